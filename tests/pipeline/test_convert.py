"""test_convert.py - end to end: convert the shared test models with bt-pipeline, read the GGUF
back with gguf-py (PyPI) and compare every tensor with an independent numpy quantization of the
source weights; metadata types; report JSON; determinism across thread counts; no output on
error."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGUFReader, GGUFValueType, GGMLQuantizationType as QT

sys.path.insert(0, os.path.dirname(__file__))
import btref  # noqa: E402

BIN = os.environ["BT_BIN"]
SHARED = os.environ["BT_SHARED"]
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def run_ini(tmp, name, model, extra_q="", out_type="tq2_0", keep_type="f16", threads=0):
    ini = os.path.join(tmp, name + ".ini")
    with open(ini, "w") as f:
        f.write(f"""[pipeline]
threads = {threads}
[input]
path = {model}
[quantize]
method = absmean
{extra_q}
[output]
path = {name}.gguf
type = {out_type}
keep_type = {keep_type}
report = {name}.json
""")
    p = subprocess.run([BIN, "-q", "run", ini], capture_output=True, text=True)
    return p, os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name + ".json")


def field(r, key):
    f = r.fields[key]
    return f.types, f.contents()


def check_model(tmp, model_name, scale, out_type):
    model = os.path.join(SHARED, "models", model_name)
    cfg = json.load(open(os.path.join(model, "config.json")))
    tag = f"{model_name}-{scale}-{out_type}"
    p, out, rep = run_ini(tmp, tag, model, f"scale = {scale}", out_type)
    check(p.returncode == 0, f"{tag}: exit {p.returncode}: {p.stderr}")
    if p.returncode:
        return
    r = GGUFReader(out)
    # metadata with the exact types llama.cpp requires
    u32 = ["llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
           "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count",
           "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "general.quantization_version"]
    for k in u32:
        check(k in r.fields and r.fields[k].types == [GGUFValueType.UINT32], f"{tag}: {k} missing or not u32")
    for k in ["llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base"]:
        check(k in r.fields and r.fields[k].types == [GGUFValueType.FLOAT32], f"{tag}: {k} not f32")
    check(field(r, "general.architecture")[1] == "llama", f"{tag}: architecture")
    check(field(r, "llama.block_count")[1] == cfg["num_hidden_layers"], f"{tag}: block_count")
    check(field(r, "llama.embedding_length")[1] == cfg["hidden_size"], f"{tag}: embedding_length")
    check(field(r, "llama.attention.head_count_kv")[1] == cfg["num_key_value_heads"], f"{tag}: head_count_kv")
    theta = cfg.get("rope_theta", cfg.get("rope_parameters", {}).get("rope_theta"))
    check(abs(field(r, "llama.rope.freq_base")[1] - theta) < 1e-3, f"{tag}: rope theta")
    check(field(r, "tokenizer.ggml.model")[1] == "gpt2", f"{tag}: tokenizer model")
    check(field(r, "tokenizer.ggml.pre")[1] == "llama-bpe", f"{tag}: tokenizer pre")
    toks = field(r, "tokenizer.ggml.tokens")[1]
    check(len(toks) == cfg["vocab_size"], f"{tag}: {len(toks)} tokens")
    tj = json.load(open(os.path.join(model, "tokenizer.json")))
    check(len(field(r, "tokenizer.ggml.merges")[1]) == len(tj["model"]["merges"]), f"{tag}: merges")
    check(all(toks[i] == t for t, i in list(tj["model"]["vocab"].items())[:500]), f"{tag}: token strings")
    # tensors
    src = btref.read_model(model)
    tensors = {t.name: t for t in r.tensors}
    expect = {btref.gguf_name(k) for k in src}
    check(set(tensors) == expect, f"{tag}: tensor names differ: {sorted(set(tensors) ^ expect)[:6]}")
    qtype = QT.TQ2_0 if out_type == "tq2_0" else QT.TQ1_0
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    n_ternary = 0
    for hf, w in src.items():
        name = btref.gguf_name(hf)
        if name not in tensors:
            continue
        t = tensors[name]
        check(list(t.shape[::-1]) == list(w.shape), f"{tag}: {name} shape {list(t.shape)} vs {w.shape}")
        if name.endswith("attn_q.weight"):
            w = btref.permute_qk(w, nh)
        if name.endswith("attn_k.weight"):
            w = btref.permute_qk(w, nkv)
        if w.ndim == 1:
            check(t.tensor_type == QT.F32, f"{tag}: {name} should be F32")
            check(np.array_equal(np.asarray(t.data).reshape(w.shape), w), f"{tag}: {name} values")
            continue
        if "embd" in name or name == "output.weight":
            check(t.tensor_type == QT.F16, f"{tag}: {name} should be F16 (kept)")
            check(np.array_equal(np.asarray(t.data).reshape(w.shape).astype(np.float32), btref.fp16(w)), f"{tag}: {name} f16 values")
            continue
        check(t.tensor_type == qtype, f"{tag}: {name} type {t.tensor_type}")
        deq = gguf.quants.dequantize(np.asarray(t.data), qtype).reshape(w.shape)
        q, s = btref.ternary_blocks(w, 256, scale)
        ref = (q.reshape(w.shape[0], -1, 256) * btref.fp16(s)[..., None]).reshape(w.shape)
        bad = np.count_nonzero(deq != ref)
        check(bad == 0, f"{tag}: {name}: {bad} of {deq.size} values differ from numpy codes x fp16(scale)")
        n_ternary += 1
    check(n_ternary == 7 * cfg["num_hidden_layers"], f"{tag}: {n_ternary} ternary tensors")
    rj = json.load(open(rep))
    check(rj["totals"]["quantized_tensors"] == n_ternary, f"{tag}: report count")
    mean = rj["totals"]["mean_rel_rmse_quantized"]
    print(f"{tag}: mean rel RMSE {mean:.4f}, {rj['totals']['bytes_in']} -> {rj['totals']['bytes_out']} bytes, "
          f"{rj['totals']['mb_per_s_in']:.1f} MB/s")
    return out


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_model(tmp, "bt-tiny", "lsq", "tq2_0")
        check_model(tmp, "bt-tiny", "absmean", "tq1_0")
        out = check_model(tmp, "bt-small", "lsq", "tq2_0")
        # same bytes for any thread count
        model = os.path.join(SHARED, "models", "bt-small")
        p1, o1, _ = run_ini(tmp, "t1", model, threads=1)
        p2, o2, _ = run_ini(tmp, "t2", model, threads=2)
        check(p1.returncode == 0 and p2.returncode == 0, "thread runs failed")
        if p1.returncode == 0 and p2.returncode == 0:
            check(open(o1, "rb").read() == open(o2, "rb").read(), "output differs between 1 and 2 threads")
            if out:
                check(open(o1, "rb").read() == open(out, "rb").read(), "output differs between runs")
        # rows not divisible by the block size fall back to keep_type, and the report says so
        # (a one-layer MLP: hidden 512, intermediate 300; its config.json says so, since the
        # reader checks the config against the tensors)
        odd = os.path.join(tmp, "oddmodel")
        os.mkdir(odd)
        tiny = os.path.join(SHARED, "models", "bt-tiny")
        open(os.path.join(odd, "tokenizer.json"), "wb").write(open(os.path.join(tiny, "tokenizer.json"), "rb").read())
        cfg = json.load(open(os.path.join(tiny, "config.json")))
        cfg.update(hidden_size=512, intermediate_size=300, num_hidden_layers=1)
        json.dump(cfg, open(os.path.join(odd, "config.json"), "w"))
        rng = np.random.default_rng(7)
        btref.write_safetensors_bf16(os.path.join(odd, "model.safetensors"), {
            "model.layers.0.mlp.down_proj.weight": rng.standard_normal((512, 300)).astype(np.float32),
            "model.layers.0.mlp.up_proj.weight": rng.standard_normal((300, 512)).astype(np.float32)})
        p, o, rep = run_ini(tmp, "odd", odd)
        check(p.returncode == 0, f"odd model: {p.stderr}")
        if p.returncode == 0:
            rows = {t["name"]: t for t in json.load(open(rep))["tensors"]}
            down = rows.get("blk.0.ffn_down.weight", {})
            check(down.get("type_out") == "f16" and "fallback to f16" in down.get("note", "") and "300" in down.get("note", ""),
                  f"fallback not reported: {down}")
            check(rows.get("blk.0.ffn_up.weight", {}).get("type_out") == "tq2_0", "512-column tensor not quantized")
            types = {t.name: t.tensor_type for t in GGUFReader(o).tensors}
            check(types.get("blk.0.ffn_down.weight") == QT.F16, "fallback tensor not F16 in the file")
        # bad input: truncated shard -> error naming the file, no output left behind
        bad = os.path.join(tmp, "badmodel")
        os.mkdir(bad)
        tiny = os.path.join(SHARED, "models", "bt-tiny")
        for f in ["config.json", "tokenizer.json"]:
            open(os.path.join(bad, f), "wb").write(open(os.path.join(tiny, f), "rb").read())
        data = open(os.path.join(tiny, "model.safetensors"), "rb").read()
        open(os.path.join(bad, "model.safetensors"), "wb").write(data[: len(data) // 2])
        before = set(os.listdir(tmp))
        p, o, _ = run_ini(tmp, "bad", bad)
        check(p.returncode != 0, "truncated input accepted")
        check("model.safetensors" in p.stderr, f"error does not name the file: {p.stderr}")
        check(not os.path.exists(o), "output left behind after an error")
        left = set(os.listdir(tmp)) - before - {"bad.ini"}
        check(not left, f"temporary files left behind: {left}")
    print(f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
