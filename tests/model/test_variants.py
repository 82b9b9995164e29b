"""test_variants.py - Llama-family variants and odd shapes end to end: for each small random fixture
model of tests/model/variants.py (Llama 2 MHA, Llama 3 GQA + llama3 rope scaling, linear rope
scaling, tied embeddings with head_dim != hidden/heads, Mistral, hidden 576), the runner's logits
on the HF folder and on bt's f32 GGUF of it equal an independent numpy forward pass; the GGUF's
metadata is read back with gguf-py; hidden 576 converted to TQ2_0 keeps its 576-column tensors at
q8_0 (bit-exact with gguf-py's Q8_0 quantizer), reports and summarises it, and block_size 64 MTQ
quantizes every tensor; other architectures are refused by name with no output."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as QT
import gguf.quants

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "pipeline"))
import variants  # noqa: E402
import btref  # noqa: E402

BIN = os.environ["BT_BIN"]
DUMP = os.environ["BT_DUMP_LOGITS"]
SHARED = os.environ["BT_SHARED"]
TOK = os.path.join(SHARED, "models", "bt-tiny", "tokenizer.json")
IDS = [0, 17, 523, 4095, 88, 1234, 7, 7, 300, 8000, 42, 1, 2048, 99, 5000, 12, 640, 3, 1500, 77]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def logits(model, tmp, tag):
    out = os.path.join(tmp, tag + ".f32")
    p = subprocess.run([DUMP, model, ",".join(map(str, IDS)), out, "cpu"], capture_output=True, text=True)
    if not check(p.returncode == 0, f"{tag}: dump_logits failed: {p.stdout}{p.stderr}"):
        return None
    return np.fromfile(out, dtype=np.float32).reshape(len(IDS), -1)


def compare(tag, got, want, tol=2e-3):
    if got is None:
        return
    d = float(np.abs(got - want).max())
    print(f"{tag}: max |logit - numpy| = {d:.3g} (logits up to {float(np.abs(want).max()):.2f})")
    check(d <= tol, f"{tag}: logits differ from the numpy reference by {d}")


def convert(tmp, name, model, method="none", out_type="tq2_0", extra=""):
    ini = os.path.join(tmp, name + ".ini")
    with open(ini, "w") as f:
        f.write(f"[input]\npath = {model}\n[quantize]\nmethod = {method}\n{extra}\n[output]\n"
                f"path = {name}.gguf\ntype = {out_type}\nkeep_type = f32\nreport = {name}.json\n")
    p = subprocess.run([BIN, "run", ini], capture_output=True, text=True)
    return p, os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + ".json")


def kv(r, key):
    f = r.fields.get(key)
    return None if f is None else f.contents()


def unpermute_qk(w, n_head):
    """GGUF interleaved q/k rows back to the HF rotate-half order (inverse of btref.permute_qk)"""
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def hf_weights_from_gguf(path, cfg):
    """the GGUF's tensors dequantized by gguf-py, with HF names and q/k rows in HF order"""
    inv = {}
    for hf in variants_names(cfg):
        inv[btref.gguf_name(hf)] = hf
    out = {}
    for t in GGUFReader(path).tensors:
        if t.name not in inv:
            continue
        a = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        a = a.reshape(tuple(int(x) for x in reversed(t.shape)))
        if t.name.endswith("attn_q.weight"):
            a = unpermute_qk(a, cfg["num_attention_heads"])
        elif t.name.endswith("attn_k.weight"):
            a = unpermute_qk(a, cfg["num_key_value_heads"])
        out[inv[t.name]] = a
    return out


def variants_names(cfg):
    names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        names += [p + n for n in ["input_layernorm.weight", "post_attention_layernorm.weight",
                                  "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                  "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                                  "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"]]
    return names


def check_gguf_meta(tag, path, cfg, w):
    r = GGUFReader(path)
    E, H = cfg["hidden_size"], cfg["num_attention_heads"]
    D = cfg.get("head_dim", E // H)
    a = "qwen2" if cfg["model_type"] == "qwen2" else "llama"
    check(kv(r, "general.architecture") == a, f"{tag}: general.architecture")
    check(kv(r, f"{a}.attention.head_count_kv") == cfg["num_key_value_heads"], f"{tag}: head_count_kv")
    check(kv(r, f"{a}.rope.dimension_count") == D, f"{tag}: rope.dimension_count")
    check(kv(r, f"{a}.embedding_length") == E and kv(r, f"{a}.block_count") == cfg["num_hidden_layers"],
          f"{tag}: embedding_length/block_count")
    check(abs(kv(r, f"{a}.rope.freq_base") - cfg["rope_theta"]) <= 1e-6 * cfg["rope_theta"], f"{tag}: freq_base")
    if "head_dim" in cfg:
        check(kv(r, f"{a}.attention.key_length") == D and kv(r, f"{a}.attention.value_length") == D,
              f"{tag}: key_length/value_length")
    sw = cfg.get("sliding_window") if cfg.get("use_sliding_window", a == "llama") else None
    check(kv(r, f"{a}.attention.sliding_window") == sw, f"{tag}: sliding_window key")
    names = {t.name for t in r.tensors}
    if a == "qwen2":  # biases as F32, q/k rows in HF order (llama.cpp runs qwen2 with NEOX rope)
        by = {t.name: t for t in r.tensors}
        for i in range(cfg["num_hidden_layers"]):
            for n, hf in [("attn_q", "q_proj"), ("attn_k", "k_proj"), ("attn_v", "v_proj")]:
                b = by.get(f"blk.{i}.{n}.bias")
                check(b is not None and b.tensor_type == QT.F32 and
                      np.array_equal(np.asarray(b.data), w[f"model.layers.{i}.self_attn.{hf}.bias"]),
                      f"{tag}: blk.{i}.{n}.bias missing or different")
                t = by[f"blk.{i}.{n}.weight"]
                check(np.array_equal(np.asarray(t.data).reshape(w[f"model.layers.{i}.self_attn.{hf}.weight"].shape),
                                     w[f"model.layers.{i}.self_attn.{hf}.weight"]), f"{tag}: blk.{i}.{n}.weight rows permuted")
    check(("output.weight" in names) != bool(cfg.get("tie_word_embeddings")), f"{tag}: output.weight presence")
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        check(kv(r, "llama.rope.scaling.type") == "linear" and
              abs(kv(r, "llama.rope.scaling.factor") - rs["factor"]) < 1e-6, f"{tag}: linear rope keys")
    if kind == "llama3":
        rf = [t for t in r.tensors if t.name == "rope_freqs.weight"]
        if check(len(rf) == 1, f"{tag}: rope_freqs.weight missing"):
            inv = variants.inv_freq(cfg)
            plain = 1.0 / cfg["rope_theta"] ** (np.arange(0, D, 2) / D)
            check(np.allclose(np.asarray(rf[0].data, dtype=np.float64), plain / inv, rtol=1e-5),
                  f"{tag}: rope_freqs values")


def check_variant(tmp, name):
    folder = os.path.join(tmp, name)
    cfg, w = variants.make(folder, name, TOK)
    want = variants.forward(cfg, w, IDS)
    compare(f"{name} (HF folder)", logits(folder, tmp, name + "-hf"), want)
    p, out, _ = convert(tmp, name + "-f32", folder)
    if not check(p.returncode == 0, f"{name}: conversion failed: {p.stderr}"):
        return
    check_gguf_meta(name, out, cfg, w)
    compare(f"{name} (GGUF f32)", logits(out, tmp, name + "-gguf"), want)
    if name == "mistral":  # a context longer than the sliding window is refused, naming it
        text = os.path.join(SHARED, "data", "eval_kjv.txt")
        p = subprocess.run([BIN, "-q", "eval", "--model", out, "--text", text, "--ctx", "256"],
                           capture_output=True, text=True)
        check(p.returncode != 0 and "sliding window 128" in p.stderr, f"mistral: ctx 256 > window 128: {p.stderr}")


def check_odd(tmp):
    """hidden 576: TQ2_0 with q8_0 fallback; MTQ with block_size 64"""
    name = "odd576"
    folder = os.path.join(tmp, name)
    cfg, w = variants.make(folder, name, TOK)
    p, out, rep = convert(tmp, "odd-tq2", folder, "absmean", "tq2_0", "keep = *embed_tokens* lm_head")
    if not check(p.returncode == 0, f"odd-tq2: conversion failed: {p.stderr}"):
        return
    rows = {t["name"]: t for t in json.load(open(rep))["tensors"]}
    odd = [n for n, t in rows.items() if len(t["shape"]) == 2 and t["shape"][1] == 576 and "blk." in n]
    check(len(odd) == 12, f"odd-tq2: expected 12 layer tensors with 576 columns, got {len(odd)}")
    for n in odd:
        t = rows[n]
        check(t["type_out"] == "q8_0" and t.get("note", "").startswith("fallback to q8_0: row length 576"),
              f"odd-tq2: {n} not reported as a q8_0 fallback: {t}")
    for i in range(2):
        check(rows[f"blk.{i}.ffn_down.weight"]["type_out"] == "tq2_0", "odd-tq2: 1536-column ffn_down not tq2_0")
    want_line = f"fallback: {len(odd)} tensors kept at q8_0 because rows are not a multiple of 256"
    check(want_line in p.stdout, f"odd-tq2: summary line missing: {p.stdout[-600:]}")
    fb = json.load(open(rep))["totals"].get("fallbacks")
    check(fb == [{"type": "q8_0", "row_multiple": 256, "tensors": len(odd)}], f"odd-tq2: JSON fallbacks {fb}")
    r = GGUFReader(out)
    byname = {t.name: t for t in r.tensors}
    for n in odd:
        t = byname[n]
        check(t.tensor_type == QT.Q8_0, f"odd-tq2: {n} is {t.tensor_type.name} in the file")
        hf = [k for k in w if btref.gguf_name(k) == n][0]
        src = w[hf]
        if n.endswith("attn_q.weight"):
            src = btref.permute_qk(src, cfg["num_attention_heads"])
        elif n.endswith("attn_k.weight"):
            src = btref.permute_qk(src, cfg["num_key_value_heads"])
        ref = gguf.quants.quantize(src.astype(np.float32), QT.Q8_0)
        check(np.array_equal(np.asarray(t.data).reshape(ref.shape), ref), f"odd-tq2: {n} q8_0 bytes differ from gguf-py")
    # the converted model runs: logits equal numpy on the dequantized weights
    wq = hf_weights_from_gguf(out, cfg)
    compare("odd576 TQ2_0+q8_0 (GGUF)", logits(out, tmp, "odd-tq2"), variants.forward(cfg, wq, IDS))
    # block_size 64 in the native format: every linear tensor is quantized
    p, out, rep = convert(tmp, "odd-mtq64", folder, "absmean", "mtq",
                          "keep = *embed_tokens* lm_head\nblock_size = 64")
    if check(p.returncode == 0, f"odd-mtq64: conversion failed: {p.stderr}"):
        rows = json.load(open(rep))["tensors"]
        lin = [t for t in rows if len(t["shape"]) == 2 and "blk." in t["name"]]
        check(len(lin) == 14 and all(t["type_out"] == "mtq1x64" for t in lin),
              f"odd-mtq64: not all layer tensors are mtq1x64: {[(t['name'], t['type_out']) for t in lin]}")
        check("fallback" not in p.stdout, "odd-mtq64: unexpected fallback")
        lg = logits(out, tmp, "odd-mtq64")
        check(lg is not None and np.isfinite(lg).all(), "odd-mtq64: the converted model does not run")


def check_refused(tmp):
    folder = os.path.join(tmp, "gemma")
    variants.make(folder, "llama2-mha", TOK)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    cfg.update(architectures=["GemmaForCausalLM"], model_type="gemma")
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"))
    p, out, _ = convert(tmp, "gemma", folder)
    check(p.returncode != 0 and "GemmaForCausalLM" in p.stderr, f"gemma: not refused by name: {p.stderr}")
    check(not os.path.exists(out), "gemma: output left behind")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for name in variants.VARIANTS:
            if name != "odd576":
                check_variant(tmp, name)
        check_odd(tmp)
        check_refused(tmp)
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
