"""bitnet_fixture.py - small random BitNet b1.58 checkpoints in the layout Hugging Face publishes
for BitNetForCausalLM (written with numpy), and an independent numpy forward pass of them.

Layouts (`kind`):
- "packed": offline-quantized, as microsoft/bitnet-b1.58-2B-4T: each ternary linear is a uint8
  tensor `X.weight` of shape (out/4, in) - code plane p (bits 2p..2p+1) of packed row r holds
  output row p*(out/4) + r as code = trit + 1 - and a one-element `X.weight_scale` (bf16);
  config.json quantization_config = {quant_method: bitnet, linear_class, quantization_mode:
  offline}. linear_class "autobitlinear" means W = T * weight_scale, "bitlinear" W = T /
  weight_scale (transformers integrations/bitnet.py).
- "bf16": the bf16 master weights (as microsoft/bitnet-b1.58-2B-4T-bf16), ternarized per tensor
  the BitNet way: s = mean|W| (clamped to 1e-5), T = clip(round(W / s), -1, 1), W = T * s.

Architecture: Llama with attn_sub_norm (RMSNorm of the attention output before o_proj),
ffn_sub_norm (RMSNorm of act(gate) * up before down_proj), hidden_act relu2 (or silu), tied
embeddings, and 8-bit per-token activations before every ternary linear: s = 127 / max|x| (max
clamped to 1e-5), x_q = clip(round_half_even(x * s), -128, 127) / s."""
import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import variants  # noqa: E402

LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def config(vocab, act="relu2", linear_class="autobitlinear", kind="packed"):
    cfg = {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet", "hidden_size": 256,
        "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
        "num_hidden_layers": 2, "vocab_size": vocab, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": act,
        "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 1,
        "torch_dtype": "bfloat16",
    }
    if kind == "packed":
        cfg["quantization_config"] = {"quant_method": "bitnet", "linear_class": linear_class,
                                      "quantization_mode": "offline"}
    return cfg


def _bf16_bytes(a):
    u = np.ascontiguousarray(variants.bf16(a), dtype=np.float32).view(np.uint32)
    return (u >> 16).astype(np.uint16).tobytes()


def write_safetensors(path, tensors):
    """{name: (dtype, shape, bytes)} as one .safetensors file"""
    hdr, blobs, off = {}, [], 0
    for name, (dt, shape, b) in tensors.items():
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def pack(T):
    """ternary (out, in) int8 -> HF packed uint8 (out/4, in)"""
    out = T.shape[0]
    c = (T + 1).astype(np.uint8)
    q = out // 4
    return c[0:q] | (c[q:2 * q] << 2) | (c[2 * q:3 * q] << 4) | (c[3 * q:4 * q] << 6)


def ternarize(W):
    """BitNet weight_quant per tensor: trits and the scale s (W ~ T * s)"""
    s = np.float32(max(float(np.abs(W.astype(np.float64)).mean()), 1e-5))
    return np.clip(np.round(W / s), -1, 1).astype(np.int8), s


def make(folder, tokenizer_json, kind="packed", act="relu2", linear_class="autobitlinear", seed=3):
    """write the checkpoint; returns (cfg, w): w has float32 weights for norms/embeddings and, for
    every linear X, w[X] = (T int8 (out, in), scale float) with W = T * scale"""
    os.makedirs(folder, exist_ok=True)
    tok = json.load(open(tokenizer_json))
    vocab = max(list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]) + 1
    cfg = config(vocab, act, linear_class, kind)
    E, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = E // H
    rng = np.random.default_rng(seed)
    w, st = {}, {}

    def put_f(name, a):
        a = variants.bf16(a)
        w[name] = a
        st[name] = ("BF16", a.shape, _bf16_bytes(a))

    put_f("model.embed_tokens.weight", rng.standard_normal((vocab, E)) * 0.05)
    put_f("model.norm.weight", 1 + 0.1 * rng.standard_normal(E))
    shapes = {"self_attn.q_proj": (H * D, E), "self_attn.k_proj": (KV * D, E),
              "self_attn.v_proj": (KV * D, E), "self_attn.o_proj": (E, H * D),
              "mlp.gate_proj": (F, E), "mlp.up_proj": (F, E), "mlp.down_proj": (E, F)}
    for i in range(L):
        p = f"model.layers.{i}."
        put_f(p + "input_layernorm.weight", 1 + 0.1 * rng.standard_normal(E))
        put_f(p + "post_attention_layernorm.weight", 1 + 0.1 * rng.standard_normal(E))
        put_f(p + "self_attn.attn_sub_norm.weight", 1 + 0.1 * rng.standard_normal(E))
        put_f(p + "mlp.ffn_sub_norm.weight", 1 + 0.1 * rng.standard_normal(F))
        for n in LINEARS:
            r, c = shapes[n]
            if kind == "packed":
                T = rng.integers(-1, 2, size=(r, c)).astype(np.int8)
                ws = variants.bf16(np.array([rng.uniform(20.0, 60.0) if linear_class == "bitlinear"
                                             else rng.uniform(0.01, 0.05)], dtype=np.float32))
                st[p + n + ".weight"] = ("U8", (r // 4, c), pack(T).tobytes())
                st[p + n + ".weight_scale"] = ("BF16", (1,), _bf16_bytes(ws))
                scale = float(ws[0]) if linear_class == "autobitlinear" else 1.0 / float(ws[0])
                w[p + n] = (T, scale)
            else:
                M = variants.bf16(rng.standard_normal((r, c)) * 0.02)
                st[p + n + ".weight"] = ("BF16", (r, c), _bf16_bytes(M))
                w[p + n] = ternarize(M.astype(np.float32))
    write_safetensors(os.path.join(folder, "model.safetensors"), st)
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=1)
    with open(tokenizer_json, "rb") as src, open(os.path.join(folder, "tokenizer.json"), "wb") as dst:
        dst.write(src.read())
    return cfg, w


MARGIN = [np.inf]  # the closest any x*s came to a rounding boundary (k + 0.5) in forward()


def act_quant(x):
    """8-bit per-token absmax fake quantization (round half to even, as torch.round)"""
    s = 127.0 / np.maximum(np.abs(x).max(-1, keepdims=True), 1e-5)
    y = x * s
    MARGIN[0] = min(MARGIN[0], float(np.abs(np.abs(y - np.floor(y)) - 0.5).min()))
    return np.clip(np.round(y), -128, 127) / s


def forward(cfg, w, ids, fp16_scales=True):
    """logits (T, vocab) in float64. fp16_scales: the scales as TQ2_0 stores them (fp16)"""
    E, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = E // H
    eps = cfg["rms_norm_eps"]
    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    inv = variants.inv_freq(cfg)
    f = {k: v.astype(np.float64) for k, v in w.items() if not isinstance(v, tuple)}

    def lin(name, x):
        t, s = w[name]
        if fp16_scales:
            s = float(np.float16(s))
        return (act_quant(x) @ t.astype(np.float64).T) * s
    x = f["model.embed_tokens.weight"][np.asarray(ids)]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = variants.rmsnorm(x, f[p + "input_layernorm.weight"], eps)
        q = variants.rope_halves(lin(p + "self_attn.q_proj", h).reshape(T, H, D), pos, inv)
        k = variants.rope_halves(lin(p + "self_attn.k_proj", h).reshape(T, KV, D), pos, inv)
        v = lin(p + "self_attn.v_proj", h).reshape(T, KV, D)
        k, v = np.repeat(k, H // KV, axis=1), np.repeat(v, H // KV, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, H * D)
        o = variants.rmsnorm(o, f[p + "self_attn.attn_sub_norm.weight"], eps)
        x = x + lin(p + "self_attn.o_proj", o)
        h = variants.rmsnorm(x, f[p + "post_attention_layernorm.weight"], eps)
        g = lin(p + "mlp.gate_proj", h)
        u = lin(p + "mlp.up_proj", h)
        a = np.maximum(g, 0) ** 2 if cfg["hidden_act"] == "relu2" else g / (1 + np.exp(-g))
        m = variants.rmsnorm(a * u, f[p + "mlp.ffn_sub_norm.weight"], eps)
        x = x + lin(p + "mlp.down_proj", m)
    x = variants.rmsnorm(x, f["model.norm.weight"], eps)
    return x @ f["model.embed_tokens.weight"].T
