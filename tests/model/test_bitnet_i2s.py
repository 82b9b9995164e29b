"""test_bitnet_i2s.py - bitnet.cpp's I2_S GGUF as input: the bitnet fixture model
(bitnet_fixture.py) written as I2_S (i2s_fixture.py) in each of the three code orders and under
the fork's architecture names (bitnet, bitnet-b1.58, bitnet-25). For each: the runner's logits
(dump_logits, reader option i2s_layout) equal the numpy forward pass with the exact float32 scales
(BT_OP_SCALE after each product, not the fp16 block scales);
the conversion to TQ2_0 / TQ1_0 (`[input] i2s_layout`) keeps every trit with block scales =
fp16(scale) (read back with gguf-py) and writes the bitnet keys. Bad input: a truncated file, a
tensor without its 32-byte trailer, a NaN scale, a code 3 and an unknown i2s_layout are refused
with messages naming the tensor or the key."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bitnet_fixture as bf  # noqa: E402
import i2s_fixture as isf  # noqa: E402
import test_bitnet as tb  # noqa: E402  (BT_BIN, BT_DUMP_LOGITS, helpers)


def logits(model, tag, layout):
    p = subprocess.run([tb.DUMP, model, ",".join(map(str, tb.IDS)), tag + ".f32", "cpu", "0", "0.1",
                        f"i2s_layout={layout}"], capture_output=True, text=True)
    if not tb.check(p.returncode == 0, f"{tag}: dump_logits failed: {p.stdout}{p.stderr}"):
        return None
    return np.fromfile(tag + ".f32", dtype=np.float32).reshape(len(tb.IDS), -1)


def convert(name, model, layout, out_type):
    with open(name + ".ini", "w") as f:
        f.write(f"[input]\npath = {model}\ni2s_layout = {layout}\n[quantize]\nmethod = absmean\n"
                f"keep = token_embd*\n[output]\npath = {name}.gguf\ntype = {out_type}\nkeep_type = f32\n")
    return subprocess.run([tb.BIN, "-q", "run", name + ".ini"], capture_output=True, text=True), name + ".gguf"


def refused(tag, model, words, layout="x86"):
    p = subprocess.run([tb.DUMP, model, "1,2", "bad.f32", "cpu", "0", "0.1", f"i2s_layout={layout}"],
                       capture_output=True, text=True)
    tb.check(p.returncode != 0 and all(w in p.stderr for w in words), f"{tag}: not refused with {words}: "
             f"rc {p.returncode}, {p.stderr}")
    print(f"{tag}: {p.stderr.strip()}")


def run(args):
    return subprocess.run([tb.BIN] + args, capture_output=True, text=True)


def cli_and_stages(tag, hf):
    """generate --i2s-layout on the arm file = the x86 file with the default = the HF folder (greedy
    text), and eval's perplexity the same from the command line and from an INI whose [input] has
    i2s_layout (the [eval] stage opens the input with it)"""
    gen = [run(["generate", "-m", m, "-p", "In the beginning", "-n", "12", "-q"] + extra)
           for m, extra in [(f"{tag}-arm.gguf", ["--i2s-layout", "arm"]), (f"{tag}-x86.gguf", []), (hf, [])]]
    tb.check(all(p.returncode == 0 for p in gen) and gen[0].stdout == gen[1].stdout == gen[2].stdout,
             f"{tag}: generate differs: {[(p.returncode, p.stdout, p.stderr[-300:]) for p in gen]}")
    print(f"{tag}: generate (arm --i2s-layout arm, x86, HF folder): {gen[0].stdout.strip()!r}")
    text = os.path.join(tb.SHARED, "data", "eval_kjv.txt")
    with open(f"{tag}-eval.ini", "w") as f:
        f.write(f"[input]\npath = {tag}-x86-1x4.gguf\ni2s_layout = x86-1x4\n[eval]\ntext = {text}\nctx = 64\n"
                f"max_windows = 2\n")
    ev = [run(["run", f"{tag}-eval.ini"]),
          run(["eval", "-m", f"{tag}-arm.gguf", "--i2s-layout", "arm", "-f", text, "-c", "64", "--max-windows", "2"]),
          run(["eval", "-m", hf, "-f", text, "-c", "64", "--max-windows", "2"])]
    ppl = [next((ln.split(" (")[0] for ln in p.stdout.splitlines() if ln.startswith("perplexity")), None)
           for p in ev]  # without the timing
    tb.check(all(p.returncode == 0 for p in ev) and ppl[0] and ppl[0] == ppl[1] == ppl[2],
             f"{tag}: eval differs: {[(p.returncode, p.stdout[-200:], p.stderr[-300:]) for p in ev]}")
    print(f"{tag}: eval ([input] i2s_layout = x86-1x4, --i2s-layout arm, HF folder): {ppl}")


def inspect_i2s(path, w):
    """inspect --json names each I2_S tensor by its file type with its file bytes (n/4 + 32) and
    f32 scale, and says it is served as TQ2_0"""
    p = run(["inspect", "--json", path])
    if not tb.check(p.returncode == 0, f"inspect {path}: {p.stderr}"):
        return
    seen = 0
    for t in json.loads(p.stdout)["tensors"]:
        lin = isf.linear_of(t["name"])
        if lin is None:
            tb.check(t["type"] != "i2_s", f"inspect: {t['name']} is not I2_S but shown as i2_s")
            continue
        T, s = w[lin]
        ok = (t["type"] == "i2_s" and t["bytes"] == T.size // 4 + 32 and t.get("served_as") == "tq2_0"
              and t.get("weight_scale") == float(np.float32(s)))
        seen += ok
        tb.check(ok, f"inspect: {t['name']}: {t} (want i2_s, {T.size // 4 + 32} bytes, scale {s})")
    tb.check(seen > 0, "inspect: no I2_S tensor listed")
    print(f"inspect: {seen} I2_S tensors named with their file bytes and f32 scales")


def main():
    cases = [("bitlinear-silu", "bitnet", dict(kind="packed", act="silu", linear_class="bitlinear"), ()),
             ("auto-relu2", "bitnet-b1.58", dict(kind="packed", act="relu2", linear_class="autobitlinear"),
              ("bt.ffn_activation",)),
             ("bitlinear-relu2", "bitnet-25", dict(kind="packed", act="relu2", linear_class="bitlinear"),
              ("bt.ffn_activation",))]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for tag, arch, kw, drop in cases:
            hf = os.path.join(tmp, tag)
            cfg, w = bf.make(hf, tb.TOK, **kw)
            p, template = tb.convert(tag + "-template", hf, "tq2_0")
            if not tb.check(p.returncode == 0, f"{tag}: template conversion failed: {p.stderr}"):
                continue
            bf.MARGIN[0] = np.inf
            want = bf.forward(cfg, w, tb.IDS, fp16_scales=False)  # the runner: exact f32 scales
            for lay in isf.LAYOUTS:
                path = f"{tag}-{lay}.gguf"
                isf.write(path, template, w, arch=arch, layout=lay, drop_keys=drop)
                tb.compare(f"{tag} {arch} I2_S {lay}", logits(path, f"{tag}-{lay}", lay), want)
                for ty in (["tq2_0", "tq1_0"] if lay == "x86" else ["tq2_0"]):
                    p, out = convert(f"{tag}-{lay}-{ty}", path, lay, ty)
                    if tb.check(p.returncode == 0, f"{tag} {lay} -> {ty}: {p.stderr}"):
                        tb.check_gguf(f"{tag} I2_S {lay} -> {ty}", out, cfg, w)
            if tag == "bitlinear-silu":
                cli_and_stages(tag, hf)
        # bad input, on the first model
        cfg, w = bf.make(os.path.join(tmp, "bad"), tb.TOK, kind="packed", act="silu", linear_class="bitlinear")
        p, template = tb.convert("bad-template", os.path.join(tmp, "bad"), "tq2_0")
        isf.write("good.gguf", template, w)
        inspect_i2s("good.gguf", w)
        raw = open("good.gguf", "rb").read()
        open("trunc.gguf", "wb").write(raw[:len(raw) // 2])
        refused("truncated", "trunc.gguf", ["tensor '", "extends past the end of the file"])
        name = "blk.0.ffn_up.weight"

        def no_trailer(n, b):
            return b[:-32] if n == name else b

        def nan_scale(n, b):
            if n == name:
                b = b.copy()
                b[-32:-28] = np.frombuffer(np.float32(np.nan).tobytes(), np.uint8)
            return b

        def code3(n, b):
            if n == name:
                b = b.copy()
                b[100] = 0xFF
            return b
        for hook, words in [(no_trailer, [name, "I2_S", "n/4 + 32"]), (nan_scale, [name, "trailer", "nan"]),
                            (code3, [name, "code 3"])]:
            isf.write(hook.__name__ + ".gguf", template, w, trailer_hook=hook)
            refused(hook.__name__, hook.__name__ + ".gguf", words)
        with open("layout.ini", "w") as f:
            f.write("[input]\npath = good.gguf\ni2s_layout = mips\n[quantize]\nmethod = absmean\n"
                    "[output]\npath = never.gguf\n")
        p = subprocess.run([tb.BIN, "run", "layout.ini"], capture_output=True, text=True)
        tb.check(p.returncode != 0 and "i2s_layout" in p.stderr and "x86|arm|x86-1x4" in p.stderr
                 and not os.path.exists("never.gguf"), f"bad i2s_layout: {p.stderr}")
        print(f"bad layout: {p.stderr.strip()}")
    print(f"{len(tb.failures)} failed")
    sys.exit(1 if tb.failures else 0)


if __name__ == "__main__":
    main()
