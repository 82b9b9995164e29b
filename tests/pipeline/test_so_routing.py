"""test_so_routing.py - [quantize] so_backend: the second-order engine's dense algebra (ops
chol_inv and gemm, ABI 2.3) routed through a cpu compute backend must give the very bytes of the
host path (OpenBLAS in the core), for 1 and 3 threads and for the cpu and cpu-avx2 backends; the
log must show the route was taken (bt-tiny's 256- and 768-column tensors run the lazy-batch
gemm). so_backend = backend with a backend that cannot open fails with non-zero exit and no
output. Calibrates bt-tiny (in the repository) on the repository's README: no shared data."""
import hashlib
import os
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SRC = os.environ["BT_SRC"]
TINY = os.path.join(SRC, "models", "bt-tiny")
failures = 0


def check(ok, what):
    global failures
    print(("ok   " if ok else "FAIL ") + what)
    failures += not ok


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.exists(path) else None


with tempfile.TemporaryDirectory() as tmp:
    text = os.path.join(tmp, "text.txt")
    with open(text, "w") as f:
        for name in ("README.md", "docs/architecture.md", "docs/formats.md"):
            f.write(open(os.path.join(SRC, name)).read())
    cal = os.path.join(tmp, "tiny.btcal")
    p = subprocess.run([BIN, "-q", "calibrate", "--model", TINY, "--text", text, "--out", cal, "--windows", "16"],
                       capture_output=True, text=True)
    check(p.returncode == 0 and os.path.exists(cal), f"calibrate bt-tiny ({p.stderr.strip()[:300]})")
    if failures:
        sys.exit(1)
    have_avx2 = os.path.exists(os.path.join(os.path.dirname(BIN), "..", "lib", "bt", "libbt-backend-cpu-avx2.so"))
    runs = [("host", "cpu", 1), ("host", "cpu", 3), ("backend", "cpu", 1), ("backend", "cpu", 3)]
    if have_avx2:
        runs.append(("backend", "cpu-avx2", 2))
    digests = {}
    for mode, backend, threads in runs:
        name = f"{mode}-{backend}-{threads}"
        out = os.path.join(tmp, name + ".gguf")
        ini = os.path.join(tmp, name + ".ini")
        open(ini, "w").write(f"""[pipeline]
backend = {backend}
threads = {threads}
[input]
path = {TINY}
[quantize]
method = absmean
calibration = {cal}
second_order = on
so_backend = {mode}
[output]
path = {out}
type = tq2_0
""")
        p = subprocess.run([BIN, "-v", "run", ini], capture_output=True, text=True)
        routed = f"second-order algebra on backend '{backend}'" in p.stderr
        check(p.returncode == 0 and routed == (mode == "backend"),
              f"{name}: exit {p.returncode}, routed {routed} ({p.stderr.strip()[-300:] if p.returncode else ''})")
        digests[name] = sha(out)
    base = digests.get("host-cpu-1")
    for name, d in digests.items():
        check(d is not None and d == base, f"{name}: the bytes of host-cpu-1 ({(d or '-')[:16]})")

    out = os.path.join(tmp, "bad.gguf")
    ini = os.path.join(tmp, "bad.ini")
    open(ini, "w").write(f"""[pipeline]
backend = nosuch
[input]
path = {TINY}
[quantize]
method = absmean
calibration = {cal}
second_order = on
so_backend = backend
[output]
path = {out}
type = tq2_0
""")
    p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
    check(p.returncode != 0 and not os.path.exists(out) and "nosuch" in p.stderr,
          f"so_backend = backend on a missing backend: exit {p.returncode}, no output ({p.stderr.strip()[:200]})")

    # a backend without the ops (opencl, where built): refused by name, or not opened at all
    if os.path.exists(os.path.join(os.path.dirname(BIN), "..", "lib", "bt", "libbt-backend-opencl.so")):
        cfg = open(ini).read().replace("backend = nosuch", "backend = opencl")
        open(ini, "w").write(cfg)
        p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
        check(p.returncode != 0 and not os.path.exists(out) and "opencl" in p.stderr,
              f"so_backend = backend on opencl: exit {p.returncode}, no output ({p.stderr.strip()[:200]})")

print("FAILED" if failures else "all passed")
sys.exit(1 if failures else 0)
