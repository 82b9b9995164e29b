"""test_ux.py - what a user sees (issue 14): every value checked before work, errors in the
user's words, honest reports (size on disk, general.file_type read back with gguf-py, bt version,
effective configuration and calibration sha256 in the JSON report), progress lines, and [eval]
quality gates (exit 4, the output kept as NAME.REJECTED.gguf). Runs on the bundled bt-tiny; the
eval text is the checkout's README (any UTF-8 text will do), so nothing from shared/ is needed."""
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import gguf

BIN = os.environ["BT_BIN"]
SRC = os.environ["BT_SRC"]
TINY = os.path.join(SRC, "models", "bt-tiny")
TEXT = os.path.join(SRC, "README.md")
failures = []


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN] + args, capture_output=True, text=True, env=e)


def check(name, cond, detail=""):
    if cond:
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name}: {detail[:600]}")


def ini(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def refused(name, p, rc, *parts, absent=()):
    ok = p.returncode == rc and all(x in p.stderr for x in parts) and not any(os.path.exists(a) for a in absent)
    check(name, ok, f"rc {p.returncode} (want {rc}), stderr: {p.stderr.strip()}, "
                    f"left: {[a for a in absent if os.path.exists(a)]}")


def file_type(path):
    f = gguf.GGUFReader(path).fields.get("general.file_type")
    return None if f is None else int(f.parts[-1][0])


def calib_mismatch():
    """a calibration of one model used for another (widths, layer count): refused, naming it"""
    small = os.path.join(os.environ["BT_SHARED"], "models", "bt-small")
    with tempfile.TemporaryDirectory() as tmp:
        cal = {}
        for name, model in (("tiny", TINY), ("small", small)):
            cal[name] = os.path.join(tmp, name + ".btcal")
            p = run(["-q", "calibrate", "--model", model, "--text", TEXT, "--out", cal[name], "--ctx", "64", "--windows", "1"])
            check(f"calibrate {name}", p.returncode == 0, p.stderr)
        for name, model, other, part in (("small", small, "tiny", "input columns"), ("tiny", TINY, "small", "input columns")):
            o = os.path.join(tmp, name + ".gguf")
            p = run(["-q", "run", ini(f"{tmp}/{name}.ini", f"[input]\npath = {model}\n[quantize]\nmethod = residual\n"
                                      f"bases = 1\ncalibration = {cal[other]}\n[output]\npath = {o}\ntype = mtq\n")])
            refused(f"{other}'s calibration for {name}", p, 2, part, "different model", absent=[o])
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)


def main():
    if sys.argv[1:] == ["calib-mismatch"]:
        return calib_mismatch()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o", "x.gguf")
        conv = f"[input]\npath = {TINY}\n[quantize]\nmethod = absmean\n[output]\npath = {out}\n"

        # ---- validation before work (nothing written) ---------------------------------------
        p = run(["-q", "run", ini(f"{tmp}/a.ini", f"[input]\npath = {TINY}\n")])
        refused("only [input]: nothing to do", p, 2, "nothing to do", "[output]")
        p = run(["-q", "run", ini(f"{tmp}/b.ini", conv.replace(TINY, TINY + "-nope"))])
        refused("missing input path says so", p, 2, f"{tmp}/b.ini:2:", "does not exist", absent=[out])
        p = run(["inspect", TINY + "-nope"])
        refused("inspect: missing path says so", p, 1, "does not exist")
        p = run(["-q", "run", ini(f"{tmp}/c.ini", conv + f"[eval]\ntext = {tmp}/none.txt\n")])
        refused("[eval] text missing: before the conversion", p, 2, f"{tmp}/c.ini:8:", "does not exist", absent=[out])
        p = run(["-q", "run", ini(f"{tmp}/d.ini", conv + f"[eval]\ntext = {TEXT}\nctx = 4096\n")])
        refused("[eval] ctx beyond the model: before the conversion", p, 2, f"{tmp}/d.ini:9:",
                "beyond the model's context of 2048", absent=[out])
        p = run(["-q", "run", ini(f"{tmp}/e.ini", conv.replace("method = absmean\n",
                                                                f"method = absmean\ncalibration = {TEXT}\n"))])
        refused("calibration a quantizer ignores", p, 2, f"{tmp}/e.ini:5:", "is not used", absent=[out])
        p = run(["-q", "run", ini(f"{tmp}/e2.ini", conv.replace("method = absmean\n",
                                                                 f"method = none\ncalibration = {TEXT}\n"))])
        refused("calibration with method = none", p, 2, f"{tmp}/e2.ini:5:", "is not used", absent=[out])
        p = run(["-q", "run", ini(f"{tmp}/f.ini", conv + f"[eval]\ntext = {TEXT}\ncompare = none\nmax_ratio = 2\n")])
        refused("gates need compare = original", p, 2, f"{tmp}/f.ini:10:", "max_ratio", absent=[out])
        p = run(["-q", "run", ini(f"{tmp}/g.ini", f"[input]\npath = {TINY}\n[eval]\ntext = {TEXT}\nmin_top1 = 0.5\n")])
        refused("gates need a conversion", p, 2, f"{tmp}/g.ini:5:", "[output]")
        p = run(["-q", "run", ini(f"{tmp}/k.ini", conv + f"[calibrate]\ntext = {TEXT}\n")])
        refused("[calibrate] parallel without out: file:line", p, 2, f"{tmp}/k.ini:7:", "add out = FILE", absent=[out])
        p = run(["-q", "generate", "--model", TINY, "--prompt", "In the beginning", "-n", "5000"])
        refused("generate -n beyond the context", p, 2, "do not fit the model's context of 2048")

        # ---- a conversion: folders created, honest summary, report --------------------------
        rep = os.path.join(tmp, "r", "deep", "x.json")
        sub = os.path.join(tmp, "sub")
        os.makedirs(sub)
        rel = ini(f"{sub}/h.ini", conv.replace(out, "../o/../o/x.gguf") + f"report = ../r/deep/x.json\n"
                  "writer = gguf\ncompress = zstd\n")
        p = run(["run", rel], {"BT_PROGRESS_INTERVAL": "0"})
        check("conversion into folders that do not exist", p.returncode == 0 and os.path.exists(out), p.stderr)
        size = os.path.getsize(out) if os.path.exists(out) else -1
        line = [x for x in p.stdout.splitlines() if x.startswith("wrote ")]
        check("summary: output path and its size on disk (zstd)",
              line and line[0].startswith(f"wrote {out}: {size / 1e6:.2f} MB on disk"), p.stdout[-400:])
        check("progress lines when piped: MB/s and ETA", "convert:" in p.stderr and "MB/s" in p.stderr
              and "ETA" in p.stderr, p.stderr[-400:])
        if os.path.exists(rep):
            r = json.load(open(rep))
            ver = run(["--version"]).stdout.split()[1]
            check("report: bt version", r.get("bt_version") == ver, str(r.get("bt_version")))
            cfg = r.get("config", {})
            check("report: every key, defaults included",
                  cfg.get("quantize", {}).get("budget_bpw") == 0 and cfg.get("output", {}).get("compress") == "zstd"
                  and cfg.get("output", {}).get("compress_level") == 3 and "block_size" in cfg.get("quantize", {})
                  and cfg.get("pipeline", {}).get("backend") == "auto", json.dumps(cfg)[:400])
            check("report: normalised paths", r["output"] == out and "/../" not in json.dumps(r), r["output"])
            check("report: file size on disk", r["totals"].get("file_bytes") == size, str(r["totals"]))
            check("report: no calibration", r.get("calibration", 1) is None, str(r.get("calibration")))
        else:
            check("report written", False, rep)
        p = run(["-q", "run", ini(f"{tmp}/q.ini", conv)])
        check("-q: no progress, no summary", p.returncode == 0 and not p.stderr and not p.stdout, p.stderr + p.stdout)

        # ---- general.file_type of every output -----------------------------------------------
        for typ, extra, want in (("tq2_0", "", 37), ("tq1_0", "", 36), ("mtq", "method = residual\nbases = 2\n", None)):
            o = os.path.join(tmp, f"ft-{typ}.gguf")
            text = f"[input]\npath = {TINY}\n[quantize]\n{extra or 'method = absmean'}\n[output]\npath = {o}\ntype = {typ}\n"
            p = run(["-q", "run", ini(f"{tmp}/ft-{typ}.ini", text)])
            got = file_type(o) if p.returncode == 0 else "failed: " + p.stderr
            check(f"general.file_type of {typ}: {want}", got == want, str(got))
        o = os.path.join(tmp, "ft-none.gguf")
        p = run(["-q", "run", ini(f"{tmp}/ft-none.ini", f"[input]\npath = {TINY}\n[quantize]\nmethod = none\n"
                                  f"[output]\npath = {o}\n")])
        check("general.file_type of an f16 copy: 1", p.returncode == 0 and file_type(o) == 1, p.stderr)
        # bases = auto with no rule for the plane count: said in the user's words
        o4 = os.path.join(tmp, "auto.gguf")
        p = run(["-q", "run", ini(f"{tmp}/auto.ini", f"[input]\npath = {TINY}\n[quantize]\nmethod = residual\n"
                                  f"bases = auto\n[output]\npath = {o4}\ntype = mtq\n")])
        refused("bases = auto without a rule: what to set", p, 2, "set target_rmse", "budget_bpw", absent=[o4])
        # requantizing to the same type: refused before work
        o2 = os.path.join(tmp, "re.gguf")
        p = run(["-q", "run", ini(f"{tmp}/re.ini", f"[input]\npath = {tmp}/ft-tq2_0.gguf\n[output]\npath = {o2}\n")])
        refused("TQ2_0 to TQ2_0 refused", p, 2, "is already tq2_0", absent=[o2])

        # ---- calibration recorded with its sha256 --------------------------------------------
        cal = os.path.join(tmp, "c.btcal")
        p = run(["-q", "calibrate", "--model", TINY, "--text", TEXT, "--out", cal, "--ctx", "64", "--windows", "2"])
        o3, rep3 = os.path.join(tmp, "cal.gguf"), os.path.join(tmp, "cal.json")
        p = run(["-q", "run", ini(f"{tmp}/cal.ini", f"[input]\npath = {TINY}\n[quantize]\nmethod = residual\nbases = 1\n"
                                  f"calibration = {cal}\n[output]\npath = {o3}\ntype = mtq\nreport = {rep3}\n")])
        if p.returncode == 0:
            c = json.load(open(rep3)).get("calibration") or {}
            sha = hashlib.sha256(open(cal, "rb").read()).hexdigest()
            check("report: calibration name and sha256", c.get("path") == cal and c.get("sha256") == sha, str(c))
        else:
            check("conversion with a calibration", False, p.stderr)

        # ---- eval: report folder created, progress with running perplexity -------------------
        er = os.path.join(tmp, "missing", "dir", "e.json")
        p = run(["eval", "--model", TINY, "--text", TEXT, "--ctx", "64", "--max-windows", "3", "--report", er],
                {"BT_PROGRESS_INTERVAL": "0"})
        check("eval --report into a missing folder", p.returncode == 0 and os.path.exists(er)
              and "perplexity " in p.stdout, p.stderr)
        check("eval progress: windows and running perplexity", "window 3/3" in p.stderr
              and "perplexity so far" in p.stderr, p.stderr[-300:])

        # ---- quality gates --------------------------------------------------------------------
        ev = f"[eval]\ntext = {TEXT}\nctx = 64\nmax_windows = 2\nreport = {tmp}/gate.json\n"
        og = os.path.join(tmp, "gate.gguf")
        gconv = conv.replace(out, og)
        p = run(["-q", "run", ini(f"{tmp}/gate1.ini", gconv + ev + "max_ratio = 1.0001\n")])
        rej = os.path.join(tmp, "gate.REJECTED.gguf")
        check("gate fails: exit 4, names the gate and the kept file", p.returncode == 4 and "max_ratio" in p.stderr
              and rej in p.stderr, f"rc {p.returncode}: {p.stderr}")
        check("gate fails: output renamed", os.path.exists(rej) and not os.path.exists(og), str(os.listdir(tmp)))
        g = json.load(open(f"{tmp}/gate.json")).get("gates", {}) if os.path.exists(f"{tmp}/gate.json") else {}
        check("gate fails: eval report says which", g.get("passed") is False and g.get("max_ratio", {}).get("passed")
              is False and "max_ratio" in (g.get("failed") or ""), str(g))
        os.remove(rej)
        p = run(["-q", "run", ini(f"{tmp}/gate2.ini", gconv + ev + "max_ratio = 1000\nmax_kld = 100\nmin_top1 = 0.0001\n")])
        g = json.load(open(f"{tmp}/gate.json")).get("gates", {}) if os.path.exists(f"{tmp}/gate.json") else {}
        check("gates pass: exit 0, output in place", p.returncode == 0 and os.path.exists(og) and g.get("passed") is True,
              f"rc {p.returncode}: {p.stderr} {g}")
        p = run(["-q", "run", ini(f"{tmp}/gate3.ini", gconv + ev + "min_top1 = 0.9999\n")])
        check("min_top1 gate", p.returncode == 4 and "min_top1" in p.stderr and os.path.exists(rej), p.stderr)
        left = glob.glob(os.path.join(tmp, "**", "*.tmp*"), recursive=True)
        check("no temporary files left", not left, str(left))
    if failures:
        print(f"{len(failures)} failures")
        sys.exit(1)


if __name__ == "__main__":
    main()
