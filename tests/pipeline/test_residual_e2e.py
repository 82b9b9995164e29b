"""test_residual_e2e.py - multi-plane conversion end to end: bt-tiny with method = residual into
bt's native format (MTQ tensors in GGUF), read back with gguf-py and decoded by an independent
numpy decoder (errors must match the report); budget allocation respects budget_bpw and
budget_bytes; a budget below one plane per tensor is refused; bt's reader and eval accept the file."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader

sys.path.insert(0, os.path.dirname(__file__))
import btref  # noqa: E402

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
TINY = os.path.join(SHARED, "models", "bt-tiny")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def convert(tmp, name, qopts, extra_out=""):
    ini = os.path.join(tmp, name + ".ini")
    open(ini, "w").write(f"[input]\npath = {TINY}\n[quantize]\nmethod = residual\n{qopts}\n"
                         f"[output]\npath = {name}.gguf\ntype = mtq\nreport = {name}.json\n{extra_out}")
    p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
    return p, os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + ".json")


def quantized_bpw(rep):
    q = [t for t in rep["tensors"] if t["quantized"]]
    return sum(t["bytes_out"] * 8 for t in q) / sum(t["shape"][0] * t["shape"][1] for t in q)


with tempfile.TemporaryDirectory() as tmp:
    cfg = json.load(open(os.path.join(TINY, "config.json")))
    src = btref.read_model(TINY)
    p, out, rep_path = convert(tmp, "n2", "bases = 2")
    check(p.returncode == 0, f"residual N=2: {p.stderr}")
    if p.returncode == 0:
        rep = json.load(open(rep_path))
        rows = {t["name"]: t for t in rep["tensors"]}
        r = GGUFReader(out)
        tensors = {t.name: t for t in r.tensors}
        n = 0
        for hf, w in src.items():
            name = btref.gguf_name(hf)
            key = "bt.mtq." + name
            if key not in r.fields:
                continue
            planes, block, layout, cols = [int(x) for x in r.fields[key].contents()]
            check((planes, block, layout, cols) == (2, 256, 0, w.shape[1]), f"{name}: mtq geometry {planes, block, layout, cols}")
            t = tensors[name]
            raw = np.asarray(t.data, dtype=np.int8).view(np.uint8).reshape(w.shape[0], -1)
            deq = btref.mtq_decode_interleaved(raw, planes, block, cols)
            if name.endswith("attn_q.weight"):
                w = btref.permute_qk(w, cfg["num_attention_heads"])
            if name.endswith("attn_k.weight"):
                w = btref.permute_qk(w, cfg["num_key_value_heads"])
            rel = float(np.linalg.norm(deq - w) / np.linalg.norm(w))
            check(abs(rel - rows[name]["rel_rmse"]) < 1e-4, f"{name}: decoded rel RMSE {rel:.5f} vs report {rows[name]['rel_rmse']:.5f}")
            check(rel < 0.2, f"{name}: rel RMSE {rel:.4f} too high for 2 planes")
            n += 1
        check(n == 7 * cfg["num_hidden_layers"], f"{n} MTQ tensors")
        check(abs(quantized_bpw(rep) - 4.125) < 1e-9, f"N=2 bits/weight {quantized_bpw(rep)}")
        # bt's own reader and eval accept the file
        e = subprocess.run([BIN, "-q", "eval", "--model", out, "--text", os.path.join(SHARED, "data", "eval_kjv.txt"),
                            "--max-windows", "2", "--report", os.path.join(tmp, "ev.json")], capture_output=True, text=True)
        check(e.returncode == 0, f"eval of MTQ file: {e.stderr}")
        if e.returncode == 0:
            ppl = json.load(open(os.path.join(tmp, "ev.json")))["perplexity"]
            check(20 < ppl < 40, f"N=2 perplexity on 2 windows {ppl}")
        ins = subprocess.run([BIN, "inspect", out], capture_output=True, text=True)
        check(ins.returncode == 0 and "2 planes, 256-element blocks, interleaved layout" in ins.stdout, "inspect does not show planes")

    # budgets: mean bits/weight of the quantized tensors within budget_bpw, more planes with more budget
    bpws = []
    for budget in (2.5, 3.5):
        p, out, rep_path = convert(tmp, f"b{budget}", f"bases = auto\nbudget_bpw = {budget}\nlayout = compact")
        check(p.returncode == 0, f"budget {budget}: {p.stderr}")
        if p.returncode == 0:
            b = quantized_bpw(json.load(open(rep_path)))
            check(b <= budget + 1e-9, f"budget_bpw {budget}: used {b:.4f}")
            check(b >= budget - 0.35, f"budget_bpw {budget}: used only {b:.4f}")
            bpws.append(b)
    check(len(bpws) == 2 and bpws[1] > bpws[0], f"more budget did not buy more planes: {bpws}")
    limit = 6_000_000
    p, out, rep_path = convert(tmp, "bytes", f"bases = auto\nbudget_bytes = {limit}")
    check(p.returncode == 0, f"budget_bytes: {p.stderr}")
    if p.returncode == 0:
        total = json.load(open(rep_path))["totals"]["bytes_out"]
        check(total <= limit, f"budget_bytes {limit}: tensors take {total}")
    p, out, _ = convert(tmp, "small", "bases = auto\nbudget_bpw = 1.0")
    check(p.returncode == 2 and "budget too small" in p.stderr and not os.path.exists(out), f"too-small budget: {p.returncode} {p.stderr}")

    # one INI: [calibrate] runs first, then the conversion uses it (calibration = FILE)
    calib_text = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "architecture.md")
    extra = f"[calibrate]\ntext = {calib_text}\nout = cal.btcal\nctx = 128\nwindows = 4\ndiag_only = true\n"
    p, out, rep_path = convert(tmp, "cal", "bases = auto\nbudget_bpw = 2.5\nlayout = compact\ncalibration = cal.btcal", extra)
    check(p.returncode == 0, f"calibrate + convert: {p.stderr}")
    p2, out2, rep2 = convert(tmp, "nocal", "bases = auto\nbudget_bpw = 2.5\nlayout = compact")
    if p.returncode == 0 and p2.returncode == 0:
        check(os.path.exists(os.path.join(tmp, "cal.btcal")), "calibration file not written")
        check(quantized_bpw(json.load(open(rep_path))) <= 2.5, "calibrated budget exceeded")
        check(open(out, "rb").read() != open(out2, "rb").read(), "calibration did not change the result")
    p, _, _ = convert(tmp, "badcal", "bases = 2\ncalibration = missing.btcal")
    check(p.returncode != 0 and "missing.btcal" in p.stderr, f"missing calibration file: {p.returncode} {p.stderr}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
