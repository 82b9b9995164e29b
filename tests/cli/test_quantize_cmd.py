"""test_quantize_cmd.py - `bt-pipeline quantize IN OUT TYPE` builds the pipeline an INI would:
for each common TYPE the output is byte-identical to `bt-pipeline run` on the INI that
`--print-ini` shows (and to a hand-written INI for tq2_0); options reach the INI; a bad TYPE,
a bad budget and conflicting options are named in the error (rc 2) and leave nothing."""
import os
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
TINY = os.path.join(SHARED, "models", "bt-tiny")
failures = []


def run(*args, cwd=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=cwd)


def check(name, cond, p=None):
    if cond:
        print(f"ok   {name}")
    else:
        failures.append(name)
        print(f"FAIL {name}" + (f": rc {p.returncode}, stderr {p.stderr[-500:]!r}" if p else ""))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for t in ("tq2_0", "tq1_0", "mtq2", "auto:2.5", "q8_0"):
            tag = t.replace(":", "_")
            q = os.path.join(tmp, f"q-{tag}.gguf")
            args = [TINY, q, t, "-q", "--threads", "2"] + ([] if t == "q8_0" else ["--keep", "*embed_tokens* lm_head *norm*"])
            p = run("quantize", *args)
            check(f"quantize {t}", p.returncode == 0 and os.path.exists(q), p)
            ini = run("quantize", *args, "--print-ini")
            check(f"quantize {t} --print-ini", ini.returncode == 0 and "[quantize]" in ini.stdout, ini)
            # the printed INI, run from the same folder with another output name
            text = ini.stdout.replace(q, os.path.join(tmp, f"r-{tag}.gguf"))
            with open(os.path.join(tmp, f"{tag}.ini"), "w") as f:
                f.write(text)
            p = run("-q", "run", f"{tag}.ini", cwd=tmp)
            r = os.path.join(tmp, f"r-{tag}.gguf")
            same = os.path.exists(r) and os.path.exists(q) and open(q, "rb").read() == open(r, "rb").read()
            check(f"quantize {t} == run on its INI (byte-identical)", p.returncode == 0 and same, p)
        # against an INI written by hand, like examples/convert.ini
        with open(os.path.join(tmp, "hand.ini"), "w") as f:
            f.write(f"[input]\npath = {TINY}\n[quantize]\nmethod = absmean\nscale = lsq\n"
                    f"keep = *embed_tokens* lm_head *norm*\n[output]\npath = {tmp}/hand.gguf\ntype = tq2_0\nkeep_type = f16\n")
        p = run("-q", "run", os.path.join(tmp, "hand.ini"))
        same = open(os.path.join(tmp, "q-tq2_0.gguf"), "rb").read() == open(os.path.join(tmp, "hand.gguf"), "rb").read()
        check("quantize tq2_0 == a hand-written INI", p.returncode == 0 and same, p)
        # the options appear as keys
        p = run("quantize", TINY, "o.gguf", "mtq3", "--calibration", "c.btcal", "--report", "r.json",
                "--keep-type", "bf16", "--backend", "cpu", "-t", "3", "--print-ini")
        want = ["bases = 3", "calibration = c.btcal", "second_order = on", "report = r.json", "keep_type = bf16",
                "backend = cpu", "threads = 3", "type = mtq", "method = residual"]
        check("options become INI keys", p.returncode == 0 and all(w in p.stdout for w in want), p)
        # errors, named, rc 2, nothing written
        out = os.path.join(tmp, "bad.gguf")
        for args, part in [([TINY, out, "tq3_0"], "unknown TYPE 'tq3_0'"),
                           ([TINY, out, "auto:x"], "TYPE 'auto:x'"),
                           ([TINY, out, "auto:0.5"], "TYPE 'auto:0.5'"),
                           ([TINY, out, "f16", "--keep-type", "bf16"], "--keep-type bf16 with TYPE f16"),
                           ([TINY, out, "f16", "--calibration", "c.btcal"], "--calibration with TYPE f16"),
                           ([TINY, out], "missing IN OUT TYPE"),
                           ([TINY, out, "tq2_0", "--keep-type", "q4"], "--keep-type 'q4'"),
                           ([TINY, out, "tq2_0", "-t", "many"], "-t 'many'"),
                           ([TINY, out, "tq2_0", "--keep", "a ;b"], "--keep 'a ;b'")]:
            p = run("quantize", *args)
            check(f"quantize {' '.join(args[2:])} -> rc 2", p.returncode == 2 and part in p.stderr and not os.path.exists(out), p)
        # an error inside the pipeline names the INI it ran
        p = run("quantize", TINY, out, "tq2_0", "--calibration", os.path.join(tmp, "none.btcal"))
        check("pipeline errors are reported", p.returncode != 0 and "none.btcal" in p.stderr and not os.path.exists(out), p)
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
