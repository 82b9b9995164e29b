#!/usr/bin/env python3
"""bench_quality.py - perplexity against bits/weight: llama.cpp's low-bit types and bt's ternary
formats on the same model, text and windows, reproduced in one run.

Model: ../shared/models/bt-small (or --model bt-tiny / a path). Perplexity text:
../shared/data/eval_kjv.txt. Calibration text (llama.cpp's imatrix and bt's calibration file):
../shared/data/calib.txt -- never the eval text.

llama.cpp rows (skipped with --skip-llama): llama.cpp is built once from the llama-cpp-python sdist
on PyPI (vendor/llama.cpp), into $LLAMA_CPP_DIR (default ~/.cache/bt/llama.cpp), the same folder
and flags as tests/interop/llama_cpp_interop.sh; the missing ones of llama-imatrix,
llama-quantize and llama-perplexity are built there. Then:
  F16 GGUF written by bt ([quantize] method = none, [output] keep_type = f16)
  llama-imatrix -m F16 -f calib.txt -c 512                          (once)
  llama-quantize --imatrix I --pure --token-embedding-type f16 --output-tensor-type f16 F16 OUT T
  llama-perplexity -m OUT -f eval_kjv.txt -c 512 -b 512             (and on F16 itself)
for T in IQ1_S IQ1_M IQ2_XXS IQ2_XS Q2_K IQ3_XXS IQ3_S. bpw = bits of the blk.* 2-D tensors in the GGUF / their
weights (gguf-py).

bt rows: each configuration is converted by `bt-pipeline run` and evaluated by `bt-pipeline eval`
twice: `--scoring llama` (exactly llama-perplexity's windows: ppl_llama) and the reference method
(`--scoring all`, paragraphs, every token: ppl_all). Rows:
  f16              the F16 GGUF above (what llama.cpp's F16 row reads)
  tq2_0_lsq        absmean, scale = lsq, TQ2_0, no calibration (the old baseline)
  tq2_0_so         absmean, TQ2_0, calibration + second_order = on
  budget_B_so      residual, bases = auto, layout = compact, budget_bpw = B, calibration +
                   second_order = on, MTQ; B = 2.31 2.63 3.06 3.44 (llama.cpp's sizes)
  vq4xB_so         vptq, vector_len 4, 2^B centroids, calibration + second_order = on, vq;
                   B = 6 8 9 (about 1.6, 2.1 and 2.35 bits/weight with codebooks and scales)
The calibration file: `bt-pipeline calibrate --model M --text calib.txt --windows 128` (full
Gram matrices, once). bpw = bits of the quantized tensors / their weights (conversion report).

The bt rows run first, then the llama.cpp rows (a build of the llama.cpp folder by another process,
e.g. the interop test, is waited for).

pairs: each llama.cpp type beside the bt row of the same nominal size; ratio = bt ppl_llama /
llama.cpp ppl (same windows).

usage: bench_quality.py [--model bt-small|bt-tiny|PATH] [--skip-llama] [--only NAME,...]
                        [--threads 2] [--keep DIR] [--bin build/bin/bt-pipeline]
--only takes bt row names and llama.cpp type names (F16, IQ2_XXS, ...). Prints one JSON object on
stdout; progress on stderr.
"""
import argparse
import fcntl
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("BT_SHARED", os.path.join(SRC, "..", "shared"))
EVAL_TEXT = os.path.join(SHARED, "data", "eval_kjv.txt")
CALIB_TEXT = os.path.join(SHARED, "data", "calib.txt")
LLAMA = os.environ.get("LLAMA_CPP_DIR", os.path.expanduser("~/.cache/bt/llama.cpp"))
LLAMA_TOOLS = ["llama-imatrix", "llama-quantize", "llama-perplexity"]
CTX = 512
CALIB_WINDOWS = 128

LLAMA_TYPES = ["F16", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "Q2_K", "IQ3_XXS", "IQ3_S"]
BUDGETS = ["2.31", "2.63", "3.06", "3.44"]

# name, [quantize] body, [output] type, needs the calibration file
BT_ROWS = [
    ("f16", None, None, False),
    ("tq2_0_lsq", "method = absmean\nscale = lsq\n", "tq2_0", False),
    ("tq2_0_so", "method = absmean\nsecond_order = on\n", "tq2_0", True),
] + [(f"budget_{b}_so", f"method = residual\nbases = auto\nlayout = compact\nbudget_bpw = {b}\n"
      "second_order = on\n", "mtq", True) for b in BUDGETS] + [
    # VPTQ-style vector quantization (plugins/vptq): v = 4 weights down a column, 2^b centroids
    (f"vq4x{b}_so", f"method = vptq\nvector_len = 4\ncentroids = {1 << b}\nsecond_order = on\n", "vq", True)
    for b in (6, 8, 9)]

# llama.cpp type -> bt row of the same nominal size
PAIRS = {"F16": ["f16"], "IQ1_S": ["vq4x6_so"], "IQ1_M": ["vq4x6_so"], "IQ2_XXS": ["tq2_0_so", "vq4x8_so"],
         "IQ2_XS": ["budget_2.31_so", "vq4x9_so"], "Q2_K": ["budget_2.63_so"], "IQ3_XXS": ["budget_3.06_so"],
         "IQ3_S": ["budget_3.44_so"]}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, what, **kw):
    """Run cmd; on failure exit with its exact error output."""
    t = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode:
        raise RuntimeError(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n"
                           f"{(p.stderr or '')[-4000:]}{(p.stdout or '')[-2000:]}")
    return p, time.time() - t


# ---------------------------------------------------------------------------------------------
# llama.cpp

def wait_other_builds(build):
    """Wait while another process (e.g. tests/interop/llama_cpp_interop.sh) builds the same folder."""
    while True:
        busy = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"--build" in cmd and build.encode() in cmd and os.path.basename(cmd[0]) == b"cmake":
                busy = True
                break
        if not busy:
            return
        log(f"llama.cpp: another build of {build} is running (pid {pid}); waiting")
        time.sleep(30)


def llama_build(threads):
    """Build the missing llama.cpp tools, as tests/interop/llama_cpp_interop.sh does (same folder,
    same sdist, same CMake flags). A lock file keeps two benches from building at once."""
    bindir = os.path.join(LLAMA, "build", "bin")
    os.makedirs(os.path.dirname(LLAMA), exist_ok=True)
    with open(LLAMA + ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.isfile(os.path.join(LLAMA, "CMakeLists.txt")):
            dl = LLAMA + ".dl"
            os.makedirs(dl, exist_ok=True)
            if not glob.glob(os.path.join(dl, "llama_cpp_python-*.tar.gz")):
                log("llama.cpp: downloading the llama-cpp-python sdist")
                run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                     "llama-cpp-python", "-d", dl], "pip download")
            tgz = sorted(glob.glob(os.path.join(dl, "llama_cpp_python-*.tar.gz")))[-1]
            run(["tar", "xzf", tgz, "-C", dl], "tar")
            src = glob.glob(os.path.join(dl, "llama_cpp_python-*", "vendor", "llama.cpp"))[0]
            shutil.rmtree(LLAMA, ignore_errors=True)
            shutil.move(src, LLAMA)
        wait_other_builds(os.path.join(LLAMA, "build"))
        missing = [t for t in LLAMA_TOOLS if not os.access(os.path.join(bindir, t), os.X_OK)]
        if missing:
            log(f"llama.cpp: building {' '.join(missing)} in {LLAMA}/build (slow on 2 cores)")
            if not os.path.isfile(os.path.join(LLAMA, "build", "CMakeCache.txt")):
                run(["cmake", "-S", LLAMA, "-B", os.path.join(LLAMA, "build"), "-DCMAKE_BUILD_TYPE=Release",
                     "-DLLAMA_CURL=OFF", "-DGGML_NATIVE=ON", "-DLLAMA_BUILD_TESTS=OFF",
                     "-DLLAMA_BUILD_SERVER=OFF"], "llama.cpp cmake configure")
            run(["cmake", "--build", os.path.join(LLAMA, "build"), f"-j{threads}", "--target"] + missing,
                "llama.cpp build")
            still = [t for t in LLAMA_TOOLS if not os.access(os.path.join(bindir, t), os.X_OK)]
            if still:
                raise RuntimeError(f"llama.cpp build finished but {' '.join(still)} missing in {bindir}")
    return bindir


def llama_version():
    dl = sorted(glob.glob(LLAMA + ".dl/llama_cpp_python-*.tar.gz"))
    return os.path.basename(dl[-1])[:-len(".tar.gz")] if dl else None


def gguf_linear_bpw(path):
    """Bits per weight of the blk.* 2-D tensors of a GGUF (bytes as stored, scales included)."""
    try:
        import gguf
    except ImportError:
        sys.path.insert(0, os.path.join(LLAMA, "gguf-py"))
        import gguf
    r = gguf.GGUFReader(path)
    nb = ne = 0
    for t in r.tensors:
        if t.name.startswith("blk.") and len([d for d in t.shape if d > 1]) == 2:
            nb += int(t.n_bytes)
            ne += int(t.n_elements)
    return nb * 8 / ne


def llama_ppl(bindir, model, threads):
    p, sec = run([os.path.join(bindir, "llama-perplexity"), "-m", model, "-f", EVAL_TEXT, "-c", str(CTX),
                  "-b", str(CTX), "-t", str(threads)], "llama-perplexity")
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", p.stdout + p.stderr)
    if not m:
        raise RuntimeError("llama-perplexity printed no final estimate:\n" + (p.stdout + p.stderr)[-3000:])
    return float(m.group(1)), float(m.group(2)), sec


def llama_rows(args, tmp, f16, only, res):
    bindir = llama_build(args.threads)
    res["llama_cpp_build"] = {"dir": LLAMA, "source": llama_version()}
    imat = os.path.join(tmp, "imatrix.gguf")
    for typ in LLAMA_TYPES:
        if only and typ not in only:
            continue
        try:
            row = {"type": typ}
            if typ == "F16":
                out = f16
            else:
                if not os.path.exists(imat):
                    log("llama-imatrix on calib.txt")
                    _, sec = run([os.path.join(bindir, "llama-imatrix"), "-m", f16, "-f", CALIB_TEXT, "-o", imat,
                                  "-c", str(CTX), "-t", str(args.threads)], "llama-imatrix")
                    res["llama_imatrix"] = {"text": "calib.txt", "ctx": CTX, "seconds": round(sec, 1)}
                out = os.path.join(tmp, f"llama-{typ}.gguf")
                _, sec = run([os.path.join(bindir, "llama-quantize"), "--imatrix", imat, "--pure",
                              "--token-embedding-type", "f16", "--output-tensor-type", "f16", f16, out, typ,
                              str(args.threads)], "llama-quantize")
                row["seconds_quantize"] = round(sec, 2)
            row["bpw"] = round(gguf_linear_bpw(out), 4)
            ppl, err, sec = llama_ppl(bindir, out, args.threads)
            row.update(ppl=round(ppl, 4), ppl_err=err, seconds_eval=round(sec, 1))
        except Exception as e:  # keep going: one failing type must not lose the others
            row["error"] = str(e)
        res["llama_cpp"].append(row)
        log(json.dumps(row))


# ---------------------------------------------------------------------------------------------
# bt

def bt_eval(args, model, scoring, rep):
    run([args.bin, "-q", "eval", "--model", model, "--text", EVAL_TEXT, "--ctx", str(CTX), "--scoring", scoring,
         "--threads", str(args.threads), "--report", rep], f"bt-pipeline eval --scoring {scoring}")
    return json.load(open(rep))


def bt_f16(args, model, tmp):
    """F16 GGUF of the input written by bt itself (method = none, keep_type = f16)."""
    out = os.path.join(tmp, "f16.gguf")
    if not os.path.exists(out):
        ini = os.path.join(tmp, "f16.ini")
        with open(ini, "w") as f:
            f.write(f"[input]\npath = {model}\n[quantize]\nmethod = none\n"
                    f"[output]\npath = {out}\nkeep_type = f16\n")
        run([args.bin, "-q", "run", ini], "bt-pipeline run (F16 GGUF)")
    return out


def bt_rows(args, model, tmp, f16, only, res):
    cal = os.path.join(tmp, "calib.btcal")
    for name, qbody, typ, use_cal in BT_ROWS:
        if only and name not in only:
            continue
        row = {"name": name}
        build = provenance(args)["build_mtime"]
        try:
            if use_cal and not os.path.exists(cal):
                log(f"bt-pipeline calibrate on calib.txt ({CALIB_WINDOWS} windows)")
                _, sec = run([args.bin, "-q", "calibrate", "--model", model, "--text", CALIB_TEXT, "--out", cal,
                              "--ctx", str(CTX), "--windows", str(CALIB_WINDOWS)], "bt-pipeline calibrate")
                res["bt_calibration"] = {"text": "calib.txt", "windows": CALIB_WINDOWS, "ctx": CTX,
                                         "seconds": round(sec, 1)}
            if qbody is None:
                out = f16
                row.update(bpw=16.0, seconds_convert=None)
            else:
                out = os.path.join(tmp, name + ".gguf")
                rp = os.path.join(tmp, name + ".report.json")
                ini = os.path.join(tmp, name + ".ini")
                with open(ini, "w") as f:
                    f.write(f"[input]\npath = {model}\n[quantize]\n{qbody}")
                    if use_cal:
                        f.write(f"calibration = {cal}\n")
                    f.write(f"[output]\npath = {out}\ntype = {typ}\nkeep_type = f16\nreport = {rp}\n")
                _, sec = run([args.bin, "-q", "run", ini], f"bt-pipeline run ({name})")
                rep = json.load(open(rp))
                q = [t for t in rep["tensors"] if t["quantized"]]
                w = sum(t["shape"][0] * t["shape"][1] for t in q)
                formats = {}
                for t in q:
                    formats[t["type_out"]] = formats.get(t["type_out"], 0) + 1
                row.update(bpw=round(sum(t["bytes_out"] * 8 for t in q) / w, 4), seconds_convert=round(sec, 2),
                           mean_rel_rmse=round(rep["totals"]["mean_rel_rmse_quantized"], 4), formats=formats)
            el = bt_eval(args, out, "llama", os.path.join(tmp, name + ".eval-llama.json"))
            ea = bt_eval(args, out, "all", os.path.join(tmp, name + ".eval-all.json"))
            row.update(ppl_llama=round(el["perplexity"], 4), ppl_all=round(ea["perplexity"], 4),
                       tokens_llama=el["tokens"], tokens_all=ea["tokens"],
                       seconds_eval=round(el["seconds"] + ea["seconds"], 1))
        except Exception as e:
            row["error"] = str(e)
        if provenance(args)["build_mtime"] != build:
            row["warning"] = "bt rebuilt during this row"
        elif build != res["bt_build"]["build_mtime"]:
            row["build_mtime"] = build
        res["bt"].append(row)
        log(json.dumps(row))


def provenance(args):
    """Which bt was measured: git HEAD, whether the tree is dirty, and the build's newest file."""
    def git(*a):
        p = subprocess.run(["git", "-C", SRC] + list(a), capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else None
    lib = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.bin))), "lib", "bt")
    files = [args.bin] + glob.glob(os.path.join(lib, "*.so"))
    newest = max((os.path.getmtime(f) for f in files if os.path.exists(f)), default=0)
    return {"git_head": git("rev-parse", "--short", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "-uno")),
            "build_mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(newest))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "bin", "bt-pipeline"))
    ap.add_argument("--model", default="bt-small", help="bt-small, bt-tiny (in ../shared/models) or a path")
    ap.add_argument("--skip-llama", action="store_true", help="only the bt rows")
    ap.add_argument("--only", default="", help="comma-separated bt row names / llama.cpp types")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", default="", help="work in this folder and keep its files (reused if present)")
    args = ap.parse_args()
    model = args.model if os.sep in args.model else os.path.join(SHARED, "models", args.model)
    if not os.path.isdir(model):
        sys.exit(f"no model folder {model}")
    only = set(x for x in args.only.split(",") if x) or None
    res = {"model": os.path.basename(os.path.normpath(model)), "text": "eval_kjv.txt", "ctx": CTX,
           "calibration_text": "calib.txt", "llama_cpp": [], "bt": [], "pairs": []}
    res["bt_build"] = provenance(args)
    t0 = time.time()
    tmpobj = None
    if args.keep:
        tmp = os.path.abspath(args.keep)
        os.makedirs(tmp, exist_ok=True)
    else:
        tmpobj = tempfile.TemporaryDirectory(prefix="bt-bench-quality-")
        tmp = tmpobj.name
    try:
        f16 = bt_f16(args, model, tmp)
        bt_rows(args, model, tmp, f16, only, res)
        if not args.skip_llama:
            try:
                llama_rows(args, tmp, f16, only, res)
            except Exception as e:
                res["llama_cpp_error"] = str(e)
                log(str(e))
    finally:
        if tmpobj:
            tmpobj.cleanup()
    bt = {r["name"]: r for r in res["bt"]}
    for r in res["llama_cpp"]:
        for name in PAIRS[r["type"]]:
            b = bt.get(name)
            if "ppl" not in r or not b or "ppl_llama" not in b:
                continue
            res["pairs"].append({"size": r["bpw"], "llama_type": r["type"], "llama_ppl": r["ppl"],
                                 "bt_name": b["name"], "bt_bpw": b["bpw"], "bt_ppl": b["ppl_llama"],
                                 "ratio": round(b["ppl_llama"] / r["ppl"], 4)})
    res["seconds_total"] = round(time.time() - t0, 1)
    if provenance(args)["build_mtime"] != res["bt_build"]["build_mtime"]:
        res["warning"] = "bt's build changed during the run (rebuilt by someone else): rows may mix builds"
        log(res["warning"])
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
