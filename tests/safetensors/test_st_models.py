"""test_st_models.py - the safetensors reader plugin on the shared test models, checked against
an independent json+numpy reading of the same files and against config.json.
Usage: test_st_models.py <st_dump> <plugin.so> <models dir>"""
import json
import math
import os
import re
import subprocess
import sys

from st_gen import checksum, read

TYPES = {"F32": 0, "F16": 1, "BF16": 2, "I32": 6, "I16": 7, "I8": 8, "U8": 9, "F64": 10, "I64": 11}
LAYER = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
         "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
         "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down"}
GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
        print("FAIL:", what)


def gguf_name(hf):
    if hf in GLOBAL:
        return GLOBAL[hf], 0
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", hf)
    if m and m.group(2) in LAYER:
        flags = 1 if m.group(2) in ("self_attn.q_proj", "self_attn.k_proj") else 0
        return "blk.%s.%s.%s" % (m.group(1), LAYER[m.group(2)], m.group(3)), flags
    return hf, 0


def dump(st_dump, plugin, path, *extra):
    r = subprocess.run([st_dump, plugin, path, *extra], capture_output=True, text=True)
    out = {"T": {}, "K": {}, "P": None, "R": None, "rc": r.returncode, "err": r.stderr}
    for line in r.stdout.splitlines():
        f = line.split(" ")
        if f[0] == "T":
            out["T"][f[1]] = (f[2], int(f[3]), int(f[4]), f[5], int(f[6]), int(f[7]), int(f[8]))
        elif f[0] == "K":
            out["K"][f[1]] = (int(f[2]), " ".join(f[3:]))
        elif f[0] == "P":
            out["P"] = int(f[2])
        elif f[0] == "R":
            out["R"] = (int(f[1]), int(f[2]))
    return out


def expected_tensors(model_dir, files):
    exp = {}
    for fn in files:
        for hf, (dt, shape, b) in read(os.path.join(model_dir, fn)).items():
            name, flags = gguf_name(hf)
            exp[name] = (hf, 2 if dt == "BF16" else TYPES[dt], len(shape),
                         ",".join(map(str, shape)) or "-", len(b), flags, checksum(b))
    return exp


def check_kvs(got, model_dir, name):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    rope = cfg.get("rope_parameters") or {}
    theta = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))
    u32 = {"llama.context_length": cfg["max_position_embeddings"],
           "llama.embedding_length": cfg["hidden_size"],
           "llama.block_count": cfg["num_hidden_layers"],
           "llama.feed_forward_length": cfg["intermediate_size"],
           "llama.attention.head_count": cfg["num_attention_heads"],
           "llama.attention.head_count_kv": cfg["num_key_value_heads"],
           "llama.rope.dimension_count": cfg["head_dim"],
           "llama.attention.key_length": cfg["head_dim"],
           "llama.attention.value_length": cfg["head_dim"],
           "llama.vocab_size": cfg["vocab_size"],
           "tokenizer.ggml.bos_token_id": cfg["bos_token_id"],
           "tokenizer.ggml.eos_token_id": cfg["eos_token_id"]}
    for k, v in u32.items():
        check(got.get(k) == (4, str(v)), "%s: %s = %s, want u32 %s" % (name, k, got.get(k), v))
    for k, v in {"llama.attention.layer_norm_rms_epsilon": cfg["rms_norm_eps"],
                 "llama.rope.freq_base": theta}.items():
        t, s = got.get(k, (None, "nan"))
        check(t == 6 and math.isclose(float(s), v, rel_tol=1e-7), "%s: %s = %s, want f32 %s" % (name, k, got.get(k), v))
    check(got.get("bt.tie_word_embeddings") == (7, str(int(cfg["tie_word_embeddings"]))), name + ": tie")
    check(got.get("general.architecture") == (8, "llama"), name + ": general.architecture")
    check(got.get("general.name") == (8, os.path.basename(model_dir)), name + ": general.name")
    check(got.get("general.source.format") == (8, "safetensors"), name + ": source.format")
    if "tokenizer.ggml.tokens" in got:  # the tokenizer helper is built in
        check(got["tokenizer.ggml.tokens"] == (9, "arr 8 %d" % cfg["vocab_size"]), name + ": tokens")
    check(not any(k.startswith("llama.rope.scaling") for k in got), name + ": no rope scaling keys")


def check_model(st_dump, plugin, model_dir, path=None, files=None):
    name = os.path.basename(model_dir)
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if files is None:
        files = sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) \
            else ["model.safetensors"]
    d = dump(st_dump, plugin, path or model_dir)
    check(d["rc"] == 0, "%s: st_dump failed: %s" % (name, d["err"]))
    check(d["P"] == 100, "%s: probe = %s" % (name, d["P"]))
    exp = expected_tensors(model_dir, files)
    check(set(d["T"]) == set(exp), "%s: tensor names differ: %s" % (name, set(d["T"]) ^ set(exp)))
    for k in exp:
        if k in d["T"]:
            check(d["T"][k] == exp[k], "%s: %s: got %s want %s" % (name, k, d["T"][k], exp[k]))
    print("%s (%s): %d tensors, %d keys" % (name, path or "dir", len(d["T"]), len(d["K"])))
    return d


def main():
    st_dump, plugin, models = sys.argv[1:4]
    tiny, small = os.path.join(models, "bt-tiny"), os.path.join(models, "bt-small")
    d = check_model(st_dump, plugin, tiny)
    check(len(d["T"]) == 4 * 9 + 2, "bt-tiny: tied model has 38 tensors")
    check("output.weight" not in d["T"], "bt-tiny: no output.weight")
    check_kvs(d["K"], tiny, "bt-tiny")
    d = check_model(st_dump, plugin, tiny, path=os.path.join(tiny, "model.safetensors"))
    check_kvs(d["K"], tiny, "bt-tiny (file)")
    d = check_model(st_dump, plugin, small)
    check(len(d["T"]) == 8 * 9 + 3, "bt-small: 75 tensors")
    check_kvs(d["K"], small, "bt-small")
    shard = "model-00002-of-00004.safetensors"
    check_model(st_dump, plugin, small, path=os.path.join(small, shard), files=[shard])
    check_model(st_dump, plugin, small, path=os.path.join(small, "model.safetensors.index.json"))
    # probe refuses other files
    check(dump(st_dump, plugin, os.path.join(small, "config.json"))["P"] == 0, "probe(config.json) != 0")
    # release(): streaming with page release keeps the peak RSS well below the model size
    full, rel = dump(st_dump, plugin, small, "--quiet"), dump(st_dump, plugin, small, "--release", "--quiet")
    check(full["rc"] == 0 and rel["rc"] == 0, "release run failed: " + rel["err"])
    g_full, g_rel = full["R"][1] - full["R"][0], rel["R"][1] - rel["R"][0]
    print("bt-small streaming peak RSS growth: %d KB without release, %d KB with release" % (g_full, g_rel))
    check(g_full > 60000 and g_rel < g_full // 2, "release() does not bound the RSS")
    print("%d failures" % fails)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
