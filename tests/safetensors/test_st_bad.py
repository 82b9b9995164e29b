"""test_st_bad.py - malformed safetensors files, broken shard indexes and config.json variants
through the reader plugin: each bad input must fail with its specific message (naming the file
and the tensor or key) and no crash; good variants must give the right metadata.
Usage: test_st_bad.py <st_dump> <plugin.so> <bt-tiny dir> [--valgrind]"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from make_corpus import cases as corpus_cases
from st_gen import arr_bytes, checksum, pack, raw

fails = 0
CFG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
       "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
       "vocab_size": 16, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
       "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu"}


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)


def tiny_tensors(cfg=CFG, layers=None):
    """the tensors of a model with the sizes of cfg (layers: which layer indices to include)"""
    e, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = cfg.get("head_dim", e // cfg["num_attention_heads"])
    q, kv = cfg["num_attention_heads"] * hd, cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * hd
    s = [("model.embed_tokens.weight", (v, e)), ("model.norm.weight", (e,))]
    for n in (range(cfg["num_hidden_layers"]) if layers is None else layers):
        p = "model.layers.%d." % n
        s += [(p + "input_layernorm.weight", (e,)), (p + "self_attn.q_proj.weight", (q, e)),
              (p + "self_attn.k_proj.weight", (kv, e)), (p + "self_attn.v_proj.weight", (kv, e)),
              (p + "self_attn.o_proj.weight", (e, q)), (p + "post_attention_layernorm.weight", (e,)),
              (p + "mlp.gate_proj.weight", (f, e)), (p + "mlp.up_proj.weight", (f, e)),
              (p + "mlp.down_proj.weight", (e, f))]
    return [(n, "BF16", sh, arr_bytes("BF16", sh, i)) for i, (n, sh) in enumerate(s)]


class Runner:
    def __init__(self, st_dump, plugin, valgrind):
        self.cmd = [st_dump, plugin]
        if valgrind:
            self.cmd = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                        "--errors-for-leak-kinds=definite,indirect"] + self.cmd

    def run(self, path):
        r = subprocess.run(self.cmd + [path], capture_output=True, text=True)
        out = {"rc": r.returncode, "E": None, "T": {}, "K": {}, "err": r.stderr}
        for line in r.stdout.splitlines():
            f = line.split(" ")
            if f[0] == "E":
                out["E"] = (int(f[1]), " ".join(f[2:]))
            elif f[0] == "T":
                out["T"][f[1]] = f[2:]
            elif f[0] == "K":
                out["K"][f[1]] = (int(f[2]), " ".join(f[3:]))
        return out

    def bad(self, name, path, status, *subs):
        r = self.run(path)
        ok = r["rc"] == 1 and r["E"] is not None and r["E"][0] == status and \
            all(s in r["E"][1] for s in subs)
        check(ok, "%s: want status %d with %s, got rc=%d %s %s" % (name, status, subs, r["rc"], r["E"],
                                                                   r["err"][-500:]))
        if ok:
            print("ok   %-22s %s" % (name, r["E"][1]))

    def good(self, name, path):
        r = self.run(path)
        check(r["rc"] == 0, "%s: want success, got rc=%d %s %s" % (name, r["rc"], r["E"], r["err"][-500:]))
        return r


def model_dir(root, name, files, cfg=CFG):
    d = os.path.join(root, name)
    os.makedirs(d)
    for fn, blob in files.items():
        with open(os.path.join(d, fn), "wb") as f:
            f.write(blob)
    if cfg is not None:
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return d


def file_cases(r, root):
    FORMAT, UNSUP, IO = -4, -5, -3
    want = {"bad_short": (FORMAT, "too short"), "bad_len_eof": (FORMAT, "extends past the end of the file"),
            "bad_len_huge": (FORMAT, "exceeds the limit"), "bad_json": (FORMAT, "invalid header JSON"),
            "bad_json_trunc": (FORMAT, "truncated"), "bad_not_object": (FORMAT, "not a JSON object"),
            "bad_trailing": (FORMAT, "unexpected bytes"), "bad_overlap": (FORMAT, "tensor 'b'", "overlap tensor 'a'"),
            "bad_hole": (FORMAT, "hole", "tensor 'b'"), "bad_range": (FORMAT, "tensor 'a'", "past the end of the data buffer"),
            "bad_tail": (FORMAT, "cover only 2"), "bad_size": (FORMAT, "tensor 'a'", "needs 12"),
            "bad_dtype": (FORMAT, "tensor 'a'", "unknown dtype 'X9'"),
            "bad_f8": (UNSUP, "tensor 'a'", "F8_E4M3 is not supported"),
            "bad_dup": (FORMAT, "duplicate tensor name 'a'"), "bad_overflow": (FORMAT, "tensor 'a'", "overflow"),
            "bad_neg": (FORMAT, "tensor 'a'", "shape[0]"), "bad_5d": (UNSUP, "tensor 'a'", "5 dimensions"),
            "bad_meta": (FORMAT, "__metadata__"), "bad_offsets3": (FORMAT, "tensor 'a'", "data_offsets"),
            "bad_nul_name": (FORMAT, "NUL"), "bad_utf8": (FORMAT, "utf-8")}
    for name, blob in corpus_cases():
        if not name.startswith("bad_"):
            continue
        path = os.path.join(root, name + ".safetensors")
        with open(path, "wb") as f:
            f.write(blob)
        st, *subs = want[name]
        r.bad(name, path, st, path + ":", *subs)
    # a real file, truncated by 4 bytes (the tiny test model's last tensor is cut)
    good = pack(tiny_tensors())
    d = model_dir(root, "trunc", {"model.safetensors": good[:-4]})
    r.bad("truncated", d, FORMAT, "model.safetensors:", "past the end of the data buffer", "truncated")
    d = model_dir(root, "empty_dir", {})
    r.bad("no model file", d, IO, "no model.safetensors")
    r.bad("no such path", os.path.join(root, "nope"), IO, "nope: cannot open")
    clash = tiny_tensors() + [("output_norm.weight", "BF16", (8,), arr_bytes("BF16", (8,), 9))]
    d = model_dir(root, "clash", {"model.safetensors": pack(clash)})
    r.bad("name clash", d, FORMAT, "'model.norm.weight' and 'output_norm.weight' both map to 'output_norm.weight'")


def index_cases(r, root):
    t = tiny_tensors()
    a, b = pack(t[:5]), pack(t[5:])
    wm = {n: ("model-00001-of-00002.safetensors" if i < 5 else "model-00002-of-00002.safetensors")
          for i, (n, *_rest) in enumerate(t)}
    idx = lambda m: json.dumps({"metadata": {"total_size": 0}, "weight_map": m}).encode()
    files = {"model-00001-of-00002.safetensors": a, "model-00002-of-00002.safetensors": b}
    d = model_dir(root, "sharded", dict(files, **{"model.safetensors.index.json": idx(wm)}))
    g = r.good("sharded ok", d)
    check(len(g["T"]) == len(t), "sharded: %d tensors" % (len(g["T"]),))
    d = model_dir(root, "missing_shard", {"model-00001-of-00002.safetensors": a,
                                          "model.safetensors.index.json": idx(wm)})
    r.bad("missing shard", d, -3, "model-00002-of-00002.safetensors: cannot open shard listed in")
    wm2 = dict(wm, **{"model.layers.0.extra.weight": "model-00001-of-00002.safetensors"})
    d = model_dir(root, "missing_tensor", dict(files, **{"model.safetensors.index.json": idx(wm2)}))
    r.bad("tensor not in shard", d, -4, "model-00001-of-00002.safetensors: tensor "
          "'model.layers.0.extra.weight' is listed in model.safetensors.index.json but missing")
    d = model_dir(root, "bad_index", dict(files, **{"model.safetensors.index.json": b'{"weight_map": 3}'}))
    r.bad("bad index", d, -4, "model.safetensors.index.json: missing or empty \"weight_map\"")
    d = model_dir(root, "bad_index_json", dict(files, **{"model.safetensors.index.json": b'{"weight_map": '}))
    r.bad("index not JSON", d, -4, "model.safetensors.index.json: invalid JSON: unexpected end of file")
    wm3 = dict(wm, **{"model.norm.weight": "../model-00002-of-00002.safetensors"})
    d = model_dir(root, "index_escape", dict(files, **{"model.safetensors.index.json": idx(wm3)}))
    r.bad("index path escape", d, -4, "tensor 'model.norm.weight' must be a file name")
    bad_shard = {"model-00001-of-00002.safetensors": a, "model-00002-of-00002.safetensors": b[:20]}
    d = model_dir(root, "bad_shard", dict(bad_shard, **{"model.safetensors.index.json": idx(wm)}))
    r.bad("broken shard", d, -4, "model-00002-of-00002.safetensors: header length")


def config_cases(r, root):
    st = {"model.safetensors": pack(tiny_tensors())}
    n = [0]

    def bad(name, cfg, status, *subs):
        n[0] += 1
        d = model_dir(root, "cfg%d" % n[0], st, cfg)
        r.bad(name, d, status, os.path.join(d, "config.json") + ":", *subs)

    def good(name, cfg):
        n[0] += 1
        return r.good(name, model_dir(root, "cfg%d" % n[0], st, cfg))

    drop = lambda k: {x: v for x, v in CFG.items() if x != k}
    bad("config missing key", drop("hidden_size"), -4, "required key 'hidden_size' is missing")
    bad("config wrong type", dict(CFG, hidden_size="8"), -4, "key 'hidden_size' must be an integer")
    bad("config float eps str", dict(CFG, rms_norm_eps="x"), -4, "key 'rms_norm_eps' must be a positive number")
    bad("config bad json", "{\"hidden_size\": ", -4, "invalid JSON: unexpected end of file")
    bad("config syntax", "{\"hidden_size\": x}", -4, "invalid JSON at byte")
    bad("config not object", "[1]", -4, "config.json: not a JSON object")
    bad("config arch", dict(CFG, architectures=["GPT2LMHeadModel"]), -5,
        "architecture GPT2LMHeadModel is not supported (LlamaForCausalLM")
    bad("config gemma", dict(CFG, architectures=["GemmaForCausalLM"]), -5,
        "architecture GemmaForCausalLM is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, "
        "BitNetForCausalLM)")
    bad("config gptq", dict(CFG, quantization_config={"quant_method": "gptq", "bits": 4}), -5,
        "quantization_config.quant_method 'gptq' is not supported")
    bad("config attn bias", dict(CFG, attention_bias=True), -5, "attention_bias=true is not supported")
    bad("config mlp bias", dict(CFG, mlp_bias=True), -5, "mlp_bias=true is not supported")
    bad("config yarn", dict(CFG, rope_scaling={"rope_type": "yarn", "factor": 4.0}), -5, "'yarn' is not supported")
    bad("config heads", dict(CFG, num_key_value_heads=3), -4, "not a multiple of num_key_value_heads")
    bad("config eos type", dict(CFG, eos_token_id="2"), -4, "key 'eos_token_id'")
    bad("config linear no factor", dict(CFG, rope_scaling={"type": "linear"}), -4,
        "required key 'rope_scaling.factor' is missing")
    g = good("config eos list / v5 rope", dict(drop("rope_theta"), eos_token_id=[7, 2],
                                               rope_parameters={"rope_theta": 123456.0, "rope_type": "default"}))
    check(g["K"].get("tokenizer.ggml.eos_token_id") == (4, "7"), "eos list -> first: %r" % (g["K"].get("tokenizer.ggml.eos_token_id"),))
    check(g["K"].get("llama.rope.freq_base") == (6, "123456"), "v5 rope_theta: %r" % (g["K"].get("llama.rope.freq_base"),))
    g = good("config no head_dim / mistral", dict(drop("head_dim"), architectures=["MistralForCausalLM"]))
    check("llama.attention.key_length" not in g["K"], "key_length written without head_dim")
    check(g["K"].get("llama.rope.dimension_count") == (4, "4"), "n_rot = hidden/heads")
    g = good("config qwen2", dict(CFG, architectures=["Qwen2ForCausalLM"], model_type="qwen2"))
    check(g["K"].get("general.architecture") == (8, "qwen2") and "llama.embedding_length" not in g["K"] and
          g["K"].get("qwen2.rope.dimension_count") is not None, "qwen2 keys: %r" % (sorted(g["K"]),))
    g = good("config linear", dict(CFG, rope_scaling={"type": "linear", "factor": 2.0}))
    check(g["K"].get("llama.rope.scaling.type") == (8, "linear") and
          g["K"].get("llama.rope.scaling.factor") == (6, "2"), "linear scaling keys")
    # llama3 rope: rope_freqs.weight generated; values against a numpy evaluation of the formula
    rs = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}
    cfg = dict(CFG, head_dim=32, num_attention_heads=1, num_key_value_heads=1, rope_theta=500000.0, rope_scaling=rs)
    n[0] += 1  # its tensors have the attention sizes this config says (1 head of 32)
    g = r.good("config llama3", model_dir(root, "cfg%d" % n[0], {"model.safetensors": pack(tiny_tensors(cfg))}, cfg))
    freq = 500000.0 ** (-np.arange(0, 32, 2, dtype=np.float64) / 32)
    wl = 2 * math.pi / freq
    s = (64 / wl - 1.0) / (4.0 - 1.0)
    f = np.where(wl < 64 / 4.0, 1.0, np.where(wl > 64 / 1.0, 8.0, 1 / ((1 - s) / 8.0 + s))).astype(np.float32)
    check(len(set(f.tolist())) > 2, "test vector covers all three regions")
    want = ["(generated)", "0", "1", "16", str(16 * 4), "0", str(checksum(f.tobytes()))]
    check(g["T"].get("rope_freqs.weight") == want, "rope_freqs: got %r want %r" % (g["T"].get("rope_freqs.weight"), want))
    check(not any(k.startswith("llama.rope.scaling") for k in g["K"]), "llama3 writes no scaling keys")


def consistency_cases(r, root):
    """config.json against the tensors: every mismatch names the key, its value, the tensor and its
    shape; the layer count is checked only when the whole model (folder or index) is opened"""
    st = {"model.safetensors": pack(tiny_tensors())}
    cases = [
        ("hidden_size", dict(CFG, hidden_size=12),
         ["hidden_size = 12: 'model.embed_tokens.weight' has shape 16x8, expected 16x12 (and 10 more tensors)"]),
        ("num_hidden_layers", dict(CFG, num_hidden_layers=3), ["num_hidden_layers = 3: 2 of the layers have no tensors (layer 1, 2)"]),
        ("num_attention_heads", dict(CFG, num_attention_heads=4, num_key_value_heads=1),
         ["num_attention_heads = 4, head_dim = 4: 'model.layers.0.self_attn.q_proj.weight' has shape 8x8, expected 16x8",
          "'model.layers.0.self_attn.o_proj.weight' has shape 8x8, expected 8x16"]),
        ("num_key_value_heads", dict(CFG, num_key_value_heads=2),
         ["num_key_value_heads = 2, head_dim = 4: 'model.layers.0.self_attn.k_proj.weight' has shape 4x8, expected 8x8",
          "'model.layers.0.self_attn.v_proj.weight' has shape 4x8"]),
        ("head_dim", dict(CFG, head_dim=2), ["num_attention_heads = 2, head_dim = 2: 'model.layers.0.self_attn.q_proj.weight' has shape 8x8, expected 4x8"]),
        ("head_dim derived", {k: v for k, v in dict(CFG, num_attention_heads=4, num_key_value_heads=2).items() if k != "head_dim"},
         ["num_attention_heads = 4, hidden_size = 8 (head size 2)", "'model.layers.0.self_attn.q_proj.weight' has shape 8x8, expected 8x8"]),
        ("vocab_size", dict(CFG, vocab_size=32), ["vocab_size = 32: 'model.embed_tokens.weight' has shape 16x8, expected 32x8"]),
        ("intermediate_size", dict(CFG, intermediate_size=24),
         ["intermediate_size = 24: 'model.layers.0.mlp.down_proj.weight' has shape 8x16, expected 8x24 (and 2 more tensors)"]),
    ]
    for i, (name, cfg, subs) in enumerate(cases):
        d = model_dir(root, "cons%d" % i, st, cfg)
        if name == "head_dim derived":  # head size 2 (8 / 4): q of 4 heads is 8 rows, consistent; k of 2 is 4
            r.good("consistent: " + name, d)
            continue
        r.bad("mismatch " + name, d, -4, os.path.join(d, "config.json") + " does not match the tensors:", *subs)
    # all mismatches at once, in one message
    d = model_dir(root, "cons_all", st, dict(CFG, hidden_size=12, vocab_size=32, intermediate_size=24, num_hidden_layers=2))
    r.bad("mismatch all", d, -4, "hidden_size = 12", "vocab_size = 32", "intermediate_size = 24",
          "num_hidden_layers = 2: 1 of the layers have no tensors (layer 1)")
    # tensors of a layer past num_hidden_layers, even in a single shard
    d = model_dir(root, "cons_beyond", {"model.safetensors": pack(tiny_tensors(dict(CFG, num_hidden_layers=2)))}, CFG)
    r.bad("mismatch layer beyond", d, -4, "num_hidden_layers = 1: 'model.layers.1.", "belongs to layer 1")
    r.bad("mismatch layer beyond, file", os.path.join(d, "model.safetensors"), -4, "belongs to layer 1")
    # a sharded 3-layer model: the folder and the index are the whole model, one shard is not
    cfg3 = dict(CFG, num_hidden_layers=3)
    t = tiny_tensors(cfg3)
    a, b = t[:2 + 9], t[2 + 9:]  # embeddings + layer 0 | layers 1, 2
    files = {"model-00001-of-00002.safetensors": pack(a), "model-00002-of-00002.safetensors": pack(b)}
    wm = {n: ("model-00001-of-00002.safetensors" if i < len(a) else "model-00002-of-00002.safetensors")
          for i, (n, *_rest) in enumerate(t)}
    idx = json.dumps({"metadata": {"total_size": 0}, "weight_map": wm}).encode()
    d = model_dir(root, "cons_sharded", dict(files, **{"model.safetensors.index.json": idx}), cfg3)
    r.good("sharded whole model", d)
    g = r.good("one shard of a sharded model", os.path.join(d, "model-00001-of-00002.safetensors"))
    check(len(g["T"]) == len(a), "one shard: %d tensors" % len(g["T"]))
    r.good("the other shard", os.path.join(d, "model-00002-of-00002.safetensors"))
    d = model_dir(root, "cons_sharded4", dict(files, **{"model.safetensors.index.json": idx}), dict(CFG, num_hidden_layers=4))
    r.bad("sharded, a layer missing", d, -4, "num_hidden_layers = 4: 1 of the layers have no tensors (layer 3)")
    r.bad("sharded, a layer missing, index", os.path.join(d, "model.safetensors.index.json"), -4, "(layer 3)")
    r.good("sharded, one shard of 4 layers", os.path.join(d, "model-00002-of-00002.safetensors"))


def main():
    st_dump, plugin, _tiny = sys.argv[1:4]
    r = Runner(st_dump, plugin, "--valgrind" in sys.argv)
    root = tempfile.mkdtemp(prefix="bt-st-bad-")
    try:
        file_cases(r, root)
        index_cases(r, root)
        config_cases(r, root)
        consistency_cases(r, root)
    finally:
        shutil.rmtree(root)
    print("%d failures" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
