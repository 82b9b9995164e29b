"""test_quality.py - converting bt-small with absmean codes (absmean and least-squares scales,
TQ2_0) and evaluating the GGUF with bt's own [eval] stage reproduces the matching perplexity rows
of ../shared/data/quant_baselines.json within 3 %."""
import json
import os
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
MODEL = os.path.join(SHARED, "models", "bt-small")
TEXT = os.path.join(SHARED, "data", "eval_kjv.txt")
base = json.load(open(os.path.join(SHARED, "data", "quant_baselines.json")))["models"]["bt-small"]
CASES = [("absmean", base["absmean_ternary_b256 (N=1)"]["ppl"]), ("lsq", base["ls_ternary_b256 (N=1)"]["ppl"])]

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    for scale, want in CASES:
        ini = os.path.join(tmp, scale + ".ini")
        open(ini, "w").write(f"""[input]
path = {MODEL}
[quantize]
method = absmean
scale = {scale}
[output]
path = {scale}.gguf
type = tq2_0
[eval]
text = {TEXT}
ctx = 512
compare = none
report = {scale}.eval.json
""")
        p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
        if p.returncode:
            print(f"FAIL {scale}: exit {p.returncode}: {p.stderr}")
            failures += 1
            continue
        r = json.load(open(os.path.join(tmp, scale + ".eval.json")))
        dev = abs(r["perplexity"] / want - 1)
        ok = dev <= 0.03 and r["tokens"] == 26732
        print(f"{'ok  ' if ok else 'FAIL'} bt-small {scale} TQ2_0: perplexity {r['perplexity']:.3f} "
              f"(reference {want:.3f}, {100 * dev:.2f} % off), {r['tokens']} tokens, {r['seconds']:.1f} s")
        failures += not ok
print(f"{len(CASES) - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
