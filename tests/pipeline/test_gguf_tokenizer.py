"""test_gguf_tokenizer.py - a GGUF that bt writes carries the tokenizer (tokenizer.ggml.*), and
eval / generate / tokenize on it, alone in a folder with no tokenizer.json, use that embedded
tokenizer: the same ids as the reference tokenizer's (data/eval_kjv.tokens.json), the same
perplexity and the same generated text as with the HF folder. The tokenizer keys are checked
with gguf-py; a copy of the GGUF without bt's own bt.tokenizer.* keys (as llama.cpp's converter
would write it: bt must then take the split rules from tokenizer.ggml.pre) gives the same ids."""
import json
import os
import subprocess
import sys
import tempfile

import gguf

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
SRC = os.environ["BT_SRC"]
MODEL = os.path.join(SRC, "models", "bt-tiny")
fails = []


def run(*args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True)
    if p.returncode:
        fails.append("%s: exit %d: %s" % (" ".join(args[:1]), p.returncode, p.stderr.strip()))
    return p.stdout


def strip_bt_keys(src, dst):
    """copy of src without bt.* keys (gguf-py reader -> writer, tensors as stored)"""
    r = gguf.GGUFReader(src)
    w = gguf.GGUFWriter(dst, r.fields["general.architecture"].contents())
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name.startswith("bt.") or name == "general.architecture":
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            w.add_key_value(name, f.contents(), vt, sub_type=f.types[-1])
        else:
            w.add_key_value(name, f.contents(), vt)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)  # shape from the stored bytes
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


with tempfile.TemporaryDirectory() as tmp:
    ini = os.path.join(tmp, "cv.ini")
    with open(ini, "w") as f:
        f.write("[input]\npath = %s\n[quantize]\nmethod = none\n[output]\npath = tiny.gguf\n"
                "keep_type = bf16\n" % MODEL)
    run("run", ini)
    g = os.path.join(tmp, "tiny.gguf")
    r = gguf.GGUFReader(g)
    f = r.fields
    want = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe"}
    for k, v in want.items():
        if k not in f or f[k].contents() != v:
            fails.append("%s: %r, expected %r" % (k, f[k].contents() if k in f else None, v))
    tj = json.load(open(os.path.join(MODEL, "tokenizer.json"), encoding="utf-8"))
    toks = f["tokenizer.ggml.tokens"].contents()
    if len(toks) != len(tj["model"]["vocab"]) or any(toks[i] != t for t, i in tj["model"]["vocab"].items()):
        fails.append("tokenizer.ggml.tokens differ from tokenizer.json")
    if len(f["tokenizer.ggml.merges"].contents()) != len(tj["model"]["merges"]):
        fails.append("tokenizer.ggml.merges: wrong count")
    if f["tokenizer.ggml.bos_token_id"].contents() != 0 or f["tokenizer.ggml.eos_token_id"].contents() != 1:
        fails.append("bos/eos ids")

    plain = os.path.join(tmp, "plain.gguf")
    strip_bt_keys(g, plain)
    if any(k.startswith("bt.") for k in gguf.GGUFReader(plain).fields):
        fails.append("bt.* keys left in the stripped copy")

    # ids of the eval text: the reference tokenizer's, from either GGUF
    ref = json.load(open(os.path.join(SHARED, "data", "eval_kjv.tokens.json")))
    ref_ids = ref["whole_ids"]  # the whole file at once, no BOS: what `tokenize` prints
    text = os.path.join(SHARED, "data", "eval_kjv.txt")
    for model in (g, plain):  # (the HF folder's ids: tests/tokenizer tokenizer_kjv_ids)
        ids = [int(x) for x in run("tokenize", "--model", model, text).split()]
        if ids != ref_ids:
            fails.append("tokenize %s: %d ids, differ from the reference's %d" % (
                os.path.basename(model), len(ids), len(ref_ids)))

    # perplexity and greedy generation: the same with the embedded tokenizer as with the folder
    short = os.path.join(tmp, "kjv4k.txt")
    with open(text, "rb") as fi, open(short, "wb") as fo:
        fo.write(fi.read(4000))
    res = {}
    for model in (g, plain, MODEL):
        out = run("eval", "--model", model, "--text", short, "--ctx", "128", "--backend", "cpu")
        gen = run("generate", "--model", model, "--prompt", "In the beginning", "-n", "8",
                  "--backend", "cpu")
        ppl = [ln.split(" (")[0] for ln in out.splitlines() if ln.startswith("perplexity ")]
        res[os.path.basename(model)] = (ppl, gen)
    vals = list(res.values())
    for name, v in res.items():
        print("%-12s %s | %r" % (name, v[0], v[1][:60]))
        if v != vals[-1]:
            fails.append("%s: eval/generate differ from the HF folder's: %r vs %r" % (name, v, vals[-1]))

for x in fails:
    print("FAIL:", x)
print("%d failures" % len(fails))
sys.exit(1 if fails else 0)
