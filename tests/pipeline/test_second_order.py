"""test_second_order.py - [quantize] second_order end to end on bt-tiny: calibration on
../shared/data/calib.txt ([calibrate] parallel and sequential), GPTQ-style TQ2_0 that gguf-py
reads, perplexity better than the plain least-squares TQ2_0 of the same size, and the refusals:
a calibration file made for another model (names the tensor), a diag_only file, second_order
without a calibration, sequential with a budget. On every refusal: non-zero exit, no output."""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import gguf

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
TINY = os.path.join(SHARED, "models", "bt-tiny")
SMALL = os.path.join(SHARED, "models", "bt-small")
CALIB = os.path.join(SHARED, "data", "calib.txt")
TEXT = os.path.join(SHARED, "data", "eval_kjv.txt")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


def run(ini_path, text):
    open(ini_path, "w").write(text)
    return subprocess.run([BIN, "-q", "run", ini_path], capture_output=True, text=True)


def digest(path):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for f in sorted(files):
            h.update(open(os.path.join(root, f), "rb").read())
    return h.hexdigest()


EVAL = f"""[eval]
text = {TEXT}
compare = none
max_windows = 24
"""

with tempfile.TemporaryDirectory() as tmp:
    before = digest(TINY)
    cal = os.path.join(tmp, "tiny.btcal")
    p = subprocess.run([BIN, "-q", "calibrate", "--model", TINY, "--text", CALIB, "--out", cal, "--windows", "64"],
                       capture_output=True, text=True)
    check(p.returncode == 0 and os.path.exists(cal), f"calibrate bt-tiny on calib.txt ({p.stderr.strip()})")
    results = {}
    for name, quant, cal_section in [
        ("lsq", "method = absmean\nscale = lsq", ""),
        ("so", f"method = absmean\ncalibration = {cal}\nsecond_order = on", ""),
        ("so_seq", "method = absmean\nsecond_order = on", f"[calibrate]\ntext = {CALIB}\nmode = sequential\nwindows = 64\n"),
    ]:
        out = os.path.join(tmp, name + ".gguf")
        p = run(os.path.join(tmp, name + ".ini"), f"""[input]
path = {TINY}
{cal_section}[quantize]
{quant}
[output]
path = {out}
type = tq2_0
report = {name}.report.json
{EVAL}report = {name}.eval.json
""")
        check(p.returncode == 0, f"convert + eval {name} (exit {p.returncode} {p.stderr.strip()[:300]})")
        if p.returncode:
            continue
        rd = gguf.GGUFReader(out)
        types = {t.name: t.tensor_type for t in rd.tensors}
        check(types.get("blk.0.attn_q.weight") == gguf.GGMLQuantizationType.TQ2_0,
              f"{name}: gguf-py reads blk.0.attn_q.weight as TQ2_0")
        results[name] = json.load(open(os.path.join(tmp, name + ".eval.json")))["perplexity"]
        rep = json.load(open(os.path.join(tmp, name + ".report.json")))
        if name != "lsq":
            herr = [t.get("hessian_err", 0) for t in rep["tensors"] if t["name"].endswith("attn_q.weight")]
            check(herr and all(h > 0 for h in herr), f"{name}: report gives the Hessian-weighted error")
    print("perplexity (24 windows):", json.dumps(results))
    if "lsq" in results:
        for k in ("so", "so_seq"):
            if k in results:
                check(results[k] < 0.9 * results["lsq"],
                      f"{k} {results[k]:.3f} at least 10 % below plain LSQ TQ2_0 {results['lsq']:.3f}")

    # ---- refusals ----
    small_cal = os.path.join(tmp, "small.btcal")
    p = subprocess.run([BIN, "-q", "calibrate", "--model", SMALL, "--text", CALIB, "--out", small_cal, "--windows", "2",
                        "--ctx", "64"], capture_output=True, text=True)
    diag_cal = os.path.join(tmp, "diag.btcal")
    p2 = subprocess.run([BIN, "-q", "calibrate", "--model", TINY, "--text", CALIB, "--out", diag_cal, "--windows", "2",
                         "--ctx", "64", "--diag-only"], capture_output=True, text=True)
    check(p.returncode == 0 and p2.returncode == 0, "calibration files for the refusal cases")
    cases = [
        ("other model", f"calibration = {small_cal}\nsecond_order = on", "", ["blk.", "calibrat"]),
        # (a quantizer that weights columns: absmean reads a calibration only with second_order)
        ("other model, no second order", f"method = residual\nbases = 1\ncalibration = {small_cal}", "",
         ["blk.", "calibrat"]),
        ("calibration nothing reads", f"calibration = {small_cal}", "", ["is not used", ".ini:"]),
        ("diag_only", f"calibration = {diag_cal}\nsecond_order = on", "", ["diag", "blk.0."]),
        ("no calibration", "second_order = on", "", ["second_order", ".ini:"]),
        ("sequential + budget", "method = residual\nbases = auto\nbudget_bpw = 2.5\nsecond_order = on",
         f"[calibrate]\ntext = {CALIB}\nmode = sequential\n", ["sequential", "budget"]),
        ("sequential + file", f"calibration = {cal}\nsecond_order = on",
         f"[calibrate]\ntext = {CALIB}\nmode = sequential\n", ["sequential", "calibration"]),
    ]
    for i, (what, quant, cal_section, needles) in enumerate(cases):
        out = os.path.join(tmp, f"bad{i}.gguf")
        p = run(os.path.join(tmp, f"bad{i}.ini"), f"""[input]
path = {TINY}
{cal_section}[quantize]
{quant}
[output]
path = {out}
type = {'mtq' if 'budget' in quant else 'tq2_0'}
""")
        msg = p.stderr.strip()
        left = [f for f in os.listdir(tmp) if f.startswith(f"bad{i}.gguf") or f.startswith(f".bad{i}")]
        check(p.returncode != 0 and all(n in msg for n in needles) and not left,
              f"refused: {what}: exit {p.returncode}: {msg[:200]}")
    check(digest(TINY) == before, "the input model is unchanged")
print(f"{failures} failed")
sys.exit(1 if failures else 0)
