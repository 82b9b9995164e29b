#!/usr/bin/env python3
"""bench_quality.py - perplexity of bt-small after each quantizer configuration (bt's own [eval],
reference method: paragraphs, windows of 512, all tokens), with bits/weight of the linear layers.

Configurations: absmean N=1 (absmean / lsq scale, TQ2_0), residual N=1/2/3 (MTQ), budget_bpw
2.5 and 3.5 (bases = auto, interleaved and compact layouts), and calibration-aware residual N=1/2
(diag(X^T X) column weights from `bt-pipeline calibrate` on a training-domain text: git release
notes and license texts from /usr/share/doc — never the eval text).

usage: bench_quality.py [--bin build/bin/bt-pipeline] [--only NAME,...] [--windows 0]
Prints one JSON object.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("BT_SHARED", os.path.join(SRC, "..", "shared"))
MODEL = os.path.join(SHARED, "models", "bt-small")
TEXT = os.path.join(SHARED, "data", "eval_kjv.txt")

CONFIGS = [
    ("absmean_absmean_n1", "absmean", "scale = absmean", "tq2_0", False),
    ("absmean_lsq_n1", "absmean", "scale = lsq", "tq2_0", False),
    ("residual_n1", "residual", "bases = 1", "mtq", False),
    ("residual_n2", "residual", "bases = 2", "mtq", False),
    ("residual_n3", "residual", "bases = 3", "mtq", False),
    ("budget_2.5", "residual", "bases = auto\nbudget_bpw = 2.5", "mtq", False),
    ("budget_3.5", "residual", "bases = auto\nbudget_bpw = 3.5", "mtq", False),
    ("budget_2.5_compact", "residual", "bases = auto\nbudget_bpw = 2.5\nlayout = compact", "mtq", False),
    ("budget_3.5_compact", "residual", "bases = auto\nbudget_bpw = 3.5\nlayout = compact", "mtq", False),
    ("residual_n1_calib", "residual", "bases = 1", "mtq", True),
    ("residual_n2_calib", "residual", "bases = 2", "mtq", True),
    ("budget_2.5_compact_calib", "residual", "bases = auto\nbudget_bpw = 2.5\nlayout = compact", "mtq", True),
    ("budget_3.5_compact_calib", "residual", "bases = auto\nbudget_bpw = 3.5\nlayout = compact", "mtq", True),
]


def calib_text(path, limit=300_000):
    parts, size = [], 0
    for f in sorted(glob.glob("/usr/share/doc/git/RelNotes/*.txt")) + sorted(glob.glob("/usr/share/common-licenses/*")):
        try:
            t = open(f, encoding="utf-8").read()
        except (UnicodeDecodeError, IsADirectoryError):
            continue
        parts.append(t)
        size += len(t)
        if size > limit:
            break
    if not parts:
        sys.exit("no calibration text found under /usr/share/doc")
    open(path, "w").write("\n\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "bin", "bt-pipeline"))
    ap.add_argument("--only", default="")
    ap.add_argument("--windows", type=int, default=0)
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    res = {"bench": "quality", "model": "bt-small", "text": "eval_kjv.txt", "ctx": 512, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        cal = os.path.join(tmp, "calib.btcal")
        if any(c[4] and (not only or c[0] in only) for c in CONFIGS):
            ct = os.path.join(tmp, "calib.txt")
            calib_text(ct)
            p = subprocess.run([a.bin, "-q", "calibrate", "--model", MODEL, "--text", ct, "--out", cal,
                                "--windows", "128", "--diag-only"], capture_output=True, text=True)
            if p.returncode:
                sys.exit(p.stderr)
            res["calibration"] = {"text": "git RelNotes + common-licenses", "windows": 128, "ctx": 512}
        for name, method, opts, typ, use_cal in CONFIGS:
            if only and name not in only:
                continue
            ini = os.path.join(tmp, name + ".ini")
            with open(ini, "w") as f:
                f.write(f"[input]\npath = {MODEL}\n[quantize]\nmethod = {method}\n{opts}\n")
                if use_cal:
                    f.write(f"calibration = {cal}\n")
                f.write(f"[output]\npath = {name}.gguf\ntype = {typ}\nreport = {name}.report.json\n")
                f.write(f"[eval]\ntext = {TEXT}\nctx = 512\ncompare = none\nmax_windows = {a.windows}\n"
                        f"report = {name}.eval.json\n")
            p = subprocess.run([a.bin, "-q", "run", ini], capture_output=True, text=True)
            if p.returncode:
                res["runs"].append({"name": name, "error": p.stderr.strip()})
                continue
            rep = json.load(open(os.path.join(tmp, name + ".report.json")))
            ev = json.load(open(os.path.join(tmp, name + ".eval.json")))
            q = [t for t in rep["tensors"] if t["quantized"]]
            w = sum(t["shape"][0] * t["shape"][1] for t in q)
            bits = sum(t["bytes_out"] * 8 for t in q)
            planes = {}
            for t in q:
                planes[t["type_out"]] = planes.get(t["type_out"], 0) + 1
            res["runs"].append({"name": name, "perplexity": round(ev["perplexity"], 4), "tokens": ev["tokens"],
                                "bits_per_weight_linear": round(bits / w, 4),
                                "mean_rel_rmse": round(rep["totals"]["mean_rel_rmse_quantized"], 4),
                                "tensor_formats": planes, "convert_seconds": round(rep["totals"]["wall_seconds"], 2)})
            print(json.dumps(res["runs"][-1]), file=sys.stderr)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
