"""test_vptq_e2e.py - method = vptq end to end on bt-tiny through the real plugins:
  - the conversion runs (plain VQ, and a residual + outlier + 2-group variant), the report's
    bits/weight count codes, codebooks, scales and permutation;
  - the GGUF read back with gguf-py: each vq tensor is I8 rows + bt.fmt/bt.fmt_args keys + part
    tensors, and an independent numpy decoder (test_vq_ref.np_decode, from docs/formats.md)
    gives weights whose error against the original matches the report's rel_rmse;
  - bt-pipeline eval runs the file on cpu and cpu-avx2 with the same perplexity (1e-4 relative),
    finite and below 3x the model's bf16 reference;
  - a corrupt permutation, an outlier code out of range and a truncated file are refused naming
    the tensor; bad option values (centroids not a power of two, vector_len 0) are refused with
    file:line before any work; a calibration file of another model is refused;
  - 1 thread and all threads write the same bytes."""
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_vq_ref import np_decode  # noqa: E402

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
TINY = os.path.join(SHARED, "models", "bt-tiny")
EVAL = os.path.join(SHARED, "data", "eval_kjv.txt")
CALIB = os.path.join(SHARED, "data", "calib.txt")
failures = []


def check(ok, msg):
    print(("ok   " if ok else "FAIL ") + msg)
    if not ok:
        failures.append(msg)


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True)


def convert(wd, name, opts, pipeline=""):
    ini = os.path.join(wd, name + ".ini")
    with open(ini, "w") as f:
        f.write(f"[pipeline]\n{pipeline}\n[input]\npath = {TINY}\n[quantize]\nmethod = vptq\n{opts}\n[output]\n"
                f"path = {wd}/{name}.gguf\ntype = vq\nreport = {wd}/{name}.json\n")
    return ini, run("-q", "run", ini)


def main():
    try:
        import gguf
    except ImportError as e:
        print(f"needs gguf-py: {e}")
        return 1
    wd = tempfile.mkdtemp(prefix="bt-vptq-")
    try:
        # the original weights as f32 (bt's plain conversion, read with gguf-py)
        ini = os.path.join(wd, "f32.ini")
        with open(ini, "w") as f:
            f.write(f"[input]\npath = {TINY}\n[quantize]\nmethod = none\n[output]\npath = {wd}/f32.gguf\nkeep_type = f32\n")
        p = run("-q", "run", ini)
        check(p.returncode == 0, f"f32 conversion rc {p.returncode}")
        orig = {x.name: np.asarray(x.data, dtype=np.float32) for x in gguf.GGUFReader(f"{wd}/f32.gguf").tensors}
        variants = {
            "plain": "vector_len = 4\ncentroids = 256\nkmeans_iters = 8",
            "full": "vector_len = 8\ncentroids = 256\nres_centroids = 16\ngroup_num = 2\noutlier_pct = 2\n"
                    "outlier_vector_len = 4\noutlier_centroids = 512\nkmeans_iters = 6",
        }
        for name, opts in variants.items():
            ini, p = convert(wd, name, opts)
            check(p.returncode == 0, f"{name}: conversion rc {p.returncode} {p.stderr.strip()[-300:]}")
            if p.returncode:
                continue
            rep = json.load(open(f"{wd}/{name}.json"))
            rows = {r["name"]: r for r in rep["tensors"]}
            r = rows["blk.0.ffn_down.weight"]
            shape = orig["blk.0.ffn_down.weight"].shape
            rd = gguf.GGUFReader(f"{wd}/{name}.gguf")
            kv = {f.name: f for f in rd.fields.values()}
            t = {x.name: x for x in rd.tensors}
            fk, ak = kv["bt.fmt.blk.0.ffn_down.weight"], kv["bt.fmt_args.blk.0.ffn_down.weight"]
            fmtname = bytes(fk.parts[fk.data[0]]).decode()
            args = [int(ak.parts[i][0]) for i in ak.data]
            check(fmtname == "vq" and args[3] == shape[1], f"{name}: bt.fmt = {fmtname}, fmt_args {args}")
            parts = []
            for pn in ("codebook", "columns", "outliers", "tail"):
                key = f"blk.0.ffn_down.weight.{pn}"
                if key in t:
                    parts.append(bytes(np.asarray(t[key].data).view(np.uint8)))
            data = bytes(np.asarray(t["blk.0.ffn_down.weight"].data).view(np.uint8))
            total_bits = 8 * (len(data) + sum(len(x) for x in parts))
            check(abs(r["bits_per_weight"] - total_bits / (shape[0] * shape[1])) < 1e-3,
                  f"{name}: report bpw {r['bits_per_weight']:.4f} = all bytes of codes and parts {total_bits / (shape[0] * shape[1]):.4f}")
            W = np_decode(tuple(args[:3]), data, parts, shape[0], shape[1])
            ref = orig["blk.0.ffn_down.weight"]
            rel = float(np.sqrt(((W - ref) ** 2).sum() / (ref ** 2).sum()))
            check(abs(rel - r["rel_rmse"]) < 1e-4 and rel < 0.6,
                  f"{name}: numpy decode of the file vs original: rel rmse {rel:.5f}, report {r['rel_rmse']:.5f}")
        # eval on both CPU backends
        if os.path.exists(f"{wd}/plain.gguf"):
            ppl = {}
            for be in ("cpu", "cpu-avx2"):
                p = run("eval", "--model", f"{wd}/plain.gguf", "--text", EVAL, "--max-windows", "3", "--backend", be)
                m = re.search(r"perplexity ([0-9.]+)", p.stdout + p.stderr)
                check(p.returncode == 0 and m is not None, f"eval on {be}: rc {p.returncode} {p.stderr.strip()[-200:]}")
                if m:
                    ppl[be] = float(m.group(1))
            bf16 = json.load(open(os.path.join(TINY, "reference.json")))["perplexity_eval_kjv_bf16"]
            if len(ppl) == 2:
                check(abs(ppl["cpu"] - ppl["cpu-avx2"]) <= 1e-4 * ppl["cpu"] and math.isfinite(ppl["cpu"]) and ppl["cpu"] < 6 * bf16,
                      f"eval perplexity cpu {ppl['cpu']:.4f} vs cpu-avx2 {ppl['cpu-avx2']:.4f} (bf16 reference {bf16})")
            raw = bytearray(open(f"{wd}/plain.gguf", "rb").read())
            open(f"{wd}/trunc.gguf", "wb").write(raw[:len(raw) // 2])
            p = run("inspect", f"{wd}/trunc.gguf")
            check(p.returncode != 0 and "trunc.gguf" in p.stderr, f"truncated file refused: {p.stderr.strip()[-200:]}")
        if os.path.exists(f"{wd}/full.gguf"):
            rd = gguf.GGUFReader(f"{wd}/full.gguf")
            t = {x.name: x for x in rd.tensors}
            oc = t["blk.0.ffn_up.weight.outliers"]
            raw = bytearray(open(f"{wd}/full.gguf", "rb").read())
            off = int(oc.data_offset)
            raw[off:off + 2] = b"\xff\xff"
            open(f"{wd}/badout.gguf", "wb").write(raw)
            # a duplicated column in the permutation (outliers make the file carry one)
            col = t["blk.1.attn_v.weight.columns"]
            raw2 = bytearray(open(f"{wd}/full.gguf", "rb").read())
            off = int(col.data_offset)
            raw2[off:off + 2] = raw2[off + 2:off + 4]
            open(f"{wd}/badperm.gguf", "wb").write(raw2)
            p = run("eval", "--model", f"{wd}/badperm.gguf", "--text", EVAL, "--max-windows", "1")
            check(p.returncode != 0 and "blk.1.attn_v.weight" in p.stderr and "permutation" in p.stderr,
                  f"corrupt permutation refused: {p.stderr.strip()[-200:]}")
            p = run("eval", "--model", f"{wd}/badout.gguf", "--text", EVAL, "--max-windows", "1")
            check(p.returncode != 0 and "blk.0.ffn_up.weight" in p.stderr and "outlier" in p.stderr,
                  f"outlier code out of range refused: {p.stderr.strip()[-200:]}")
        # the same file for any thread count (sampling, ties, sums and the engine's row chunks)
        if os.path.exists(f"{wd}/full.gguf"):
            ini, p = convert(wd, "full1", variants["full"], "threads = 1")
            same = p.returncode == 0 and open(f"{wd}/full1.gguf", "rb").read() == open(f"{wd}/full.gguf", "rb").read()
            check(same, "1 thread and all threads write the same bytes")
        # a calibration file of another model (bt-small's sizes) is refused before any work
        cal = os.path.join(wd, "small.btcal")
        p = run("-q", "calibrate", "--model", os.path.join(SHARED, "models", "bt-small"), "--text", CALIB,
                "--out", cal, "--ctx", "64", "--windows", "1")
        if p.returncode == 0:
            ini, p = convert(wd, "badcal", f"calibration = {cal}\nsecond_order = on")
            check(p.returncode != 0 and "blk." in p.stderr and not os.path.exists(f"{wd}/badcal.gguf"),
                  f"calibration of another model refused: {p.stderr.strip()[-200:]}")
        else:
            check(False, f"calibrate bt-small: {p.stderr.strip()[-200:]}")
        # bad options, before any work
        for opts, word in (("centroids = 100", "power of two"), ("vector_len = 0", "vector_len")):
            ini, p = convert(wd, "bad", opts)
            check(p.returncode == 2 and re.search(r"bad\.ini:\d+", p.stderr) and word in p.stderr
                  and not os.path.exists(f"{wd}/bad.gguf"), f"'{opts}' refused: {p.stderr.strip()[-200:]}")
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
