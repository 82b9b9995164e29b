"""test_input_sacred.py - bt never writes over its input: an output, report or calibration file that
is an input file (same path, symlink or hard link) or lies inside the input model folder is refused
with file:line before any work (rc 2), and every input file is byte-identical afterwards."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
failures = []


def digest(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            out[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def run(args):
    return subprocess.run([BIN] + args, capture_output=True, text=True)


def expect_refused(name, args, part, created=None):
    p = run(args)
    ok = p.returncode == 2 and part in p.stderr and "never modifies" in p.stderr or (
        p.returncode == 2 and part in p.stderr and "same file" in p.stderr)
    if created and os.path.exists(created):
        ok = False
    if not ok:
        failures.append(name)
        print(f"FAIL {name}: rc {p.returncode}, stderr: {p.stderr.strip()[:400]}")
    else:
        print(f"ok   {name}: {p.stderr.strip().splitlines()[-1][:160]}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model")
        shutil.copytree(os.path.join(SHARED, "models", "bt-tiny"), model)
        for root, dirs, files in os.walk(model):
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        gguf = os.path.join(tmp, "in.gguf")
        ini = os.path.join(tmp, "make.ini")
        open(ini, "w").write(f"[input]\npath = {model}\n[quantize]\nmethod = absmean\n[output]\npath = {gguf}\n")
        p = run(["-q", "run", ini])
        if p.returncode:
            print(p.stderr)
            return 1
        os.symlink(gguf, os.path.join(tmp, "sym.gguf"))
        os.link(gguf, os.path.join(tmp, "hard.gguf"))
        os.link(os.path.join(model, "config.json"), os.path.join(tmp, "hard_config.json"))
        open(os.path.join(tmp, "cal.btcal"), "wb").write(b"not read: refused before")
        before = digest(tmp)

        def case(name, text, part, created=None):
            path = os.path.join(tmp, name + ".ini")
            open(path, "w").write(text)
            expect_refused(name, ["run", path], f"{path}:", created)
            if part not in open(path).read():
                pass

        conv = "[input]\npath = {inp}\n[quantize]\nmethod = absmean\n[output]\npath = {out}\n"
        case("out_is_input_file", conv.format(inp=gguf, out=gguf), "")
        case("out_symlink_to_input", conv.format(inp=gguf, out=os.path.join(tmp, "sym.gguf")), "")
        case("out_hardlink_to_input", conv.format(inp=gguf, out=os.path.join(tmp, "hard.gguf")), "")
        case("out_inside_model", conv.format(inp=model, out=os.path.join(model, "x.gguf")), "",
             created=os.path.join(model, "x.gguf"))
        case("out_via_dotdot", conv.format(inp=model, out=os.path.join(tmp, "other", "..", "model", "y.gguf")), "",
             created=os.path.join(model, "y.gguf"))
        case("report_is_config", conv.format(inp=model, out=os.path.join(tmp, "o1.gguf")) +
             f"report = {os.path.join(model, 'config.json')}\n", "", created=os.path.join(tmp, "o1.gguf"))
        case("report_hardlink_config", conv.format(inp=model, out=os.path.join(tmp, "o2.gguf")) +
             f"report = {os.path.join(tmp, 'hard_config.json')}\n", "", created=os.path.join(tmp, "o2.gguf"))
        case("report_is_output", conv.format(inp=model, out=os.path.join(tmp, "o3.gguf")) +
             f"report = {os.path.join(tmp, 'o3.gguf')}\n", "", created=os.path.join(tmp, "o3.gguf"))
        calq = conv.replace("method = absmean\n", "method = absmean\ncalibration = {cal}\n")
        case("out_is_calibration", calq.format(inp=model, out=os.path.join(tmp, "cal.btcal"),
                                               cal=os.path.join(tmp, "cal.btcal")), "")
        case("eval_report_in_model", f"[input]\npath = {gguf}\n[eval]\ntext = {SHARED}/data/eval_kjv.txt\n"
             f"report = {gguf}\n", "")
        case("calibrate_out_in_model", f"[input]\npath = {model}\n[calibrate]\ntext = {SHARED}/data/calib.txt\n"
             f"out = {os.path.join(model, 'c.btcal')}\n", "", created=os.path.join(model, "c.btcal"))
        expect_refused("cli_eval_report", ["eval", "--model", model, "--text", f"{SHARED}/data/eval_kjv.txt",
                                           "--report", os.path.join(model, "tokenizer.json")], "--report")
        expect_refused("cli_calibrate_out", ["calibrate", "--model", model, "--text", f"{SHARED}/data/calib.txt",
                                             "--out", os.path.join(tmp, "hard_config.json")], "--out")
        after = digest(tmp)
        for k, v in before.items():
            if after.get(k) != v:
                failures.append("changed " + k)
                print(f"FAIL input changed: {k}")
        # a normal conversion next to the model still works
        ok_ini = os.path.join(tmp, "ok.ini")
        open(ok_ini, "w").write(conv.format(inp=model, out=os.path.join(tmp, "ok.gguf")))
        if run(["-q", "run", ok_ini]).returncode or not os.path.exists(os.path.join(tmp, "ok.gguf")):
            failures.append("ok conversion")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


sys.exit(main())
