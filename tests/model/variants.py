"""variants.py - small random Llama-family fixture models in the Hugging Face layout (config.json +
BF16 safetensors, written with numpy) and an independent numpy forward pass of them, written from
the transformers modelling conventions (rotate-half RoPE, GQA, RMSNorm, SwiGLU, optional q/k/v
biases, tied embeddings, head_dim != hidden/heads, rope scaling linear/llama3)."""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pipeline"))
import btref  # noqa: E402

# name -> config overrides; every variant is small enough to write and run in well under a second
VARIANTS = {
    "llama2-mha": dict(),
    "llama3-gqa": dict(num_key_value_heads=2, rope_theta=500000.0,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    "llama-linear": dict(num_key_value_heads=2, rope_scaling={"type": "linear", "factor": 4.0}),
    "llama-tied-headdim": dict(num_key_value_heads=2, head_dim=48, tie_word_embeddings=True),
    "mistral": dict(architectures=["MistralForCausalLM"], model_type="mistral", num_key_value_heads=2,
                    sliding_window=128),
    "qwen2": dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", num_key_value_heads=2,
                  rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False,
                  sliding_window=4096, max_window_layers=2),
    "odd576": dict(hidden_size=576, intermediate_size=1536, num_attention_heads=9,
                   num_key_value_heads=3),
}


def base_config(vocab):
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
        "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 4,
        "num_hidden_layers": 2, "vocab_size": vocab, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
        "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 1,
        "torch_dtype": "bfloat16",
    }


def bf16(a):
    """round to bf16 (nearest even) and back, as the written file holds it"""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return (((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)


def make(folder, variant, tokenizer_json, seed=1):
    """write variant's config.json, model.safetensors and tokenizer.json into folder; returns the
    config and the weights (HF names, float32 as stored)"""
    os.makedirs(folder, exist_ok=True)
    tok = json.load(open(tokenizer_json))
    ids = list(tok["model"]["vocab"].values()) + [t["id"] for t in tok.get("added_tokens", [])]
    vocab = max(ids) + 1
    cfg = base_config(vocab)
    cfg.update(VARIANTS[variant])
    E, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", E // H)
    rng = np.random.default_rng(seed)
    w = {"model.embed_tokens.weight": rng.standard_normal((vocab, E)) * 0.5,
         "model.norm.weight": 1 + 0.1 * rng.standard_normal(E)}
    if not cfg.get("tie_word_embeddings"):
        w["lm_head.weight"] = rng.standard_normal((vocab, E)) / math.sqrt(E)
    for i in range(L):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(E)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(E)
        for n, r, c in [("self_attn.q_proj", H * D, E), ("self_attn.k_proj", KV * D, E),
                        ("self_attn.v_proj", KV * D, E), ("self_attn.o_proj", E, H * D),
                        ("mlp.gate_proj", F, E), ("mlp.up_proj", F, E), ("mlp.down_proj", E, F)]:
            w[p + n + ".weight"] = rng.standard_normal((r, c)) / math.sqrt(c)
        if cfg.get("model_type") == "qwen2":
            for n, r in [("q_proj", H * D), ("k_proj", KV * D), ("v_proj", KV * D)]:
                w[p + "self_attn." + n + ".bias"] = 0.2 * rng.standard_normal(r)
    w = {k: bf16(v) for k, v in w.items()}
    btref.write_safetensors_bf16(os.path.join(folder, "model.safetensors"), w)
    json.dump(cfg, open(os.path.join(folder, "config.json"), "w"), indent=1)
    with open(tokenizer_json, "rb") as src, open(os.path.join(folder, "tokenizer.json"), "wb") as dst:
        dst.write(src.read())
    return cfg, w


def inv_freq(cfg):
    """RoPE inverse frequencies with the config's scaling (transformers' rope init functions)"""
    H = cfg["num_attention_heads"]
    D = cfg.get("head_dim", cfg["hidden_size"] // H)
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / base ** (np.arange(0, D, 2, dtype=np.float64) / D)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        f, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        smooth = (old / wl - lo) / (hi - lo)
        mid = (1 - smooth) * inv / f + smooth * inv
        inv = np.where(wl < old / hi, inv, np.where(wl > old / lo, inv / f, mid))
    return inv


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope_halves(x, pos, inv):
    """x (T, heads, D): rotate-half RoPE"""
    ang = pos[:, None] * inv[None, :]                       # (T, D/2)
    cos = np.cos(np.concatenate([ang, ang], -1))[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1))[:, None, :]
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


def forward(cfg, w, ids):
    """logits (T, vocab) in float64 for token ids at positions 0..T-1"""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    E, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim", E // H)
    eps = cfg["rms_norm_eps"]
    T = len(ids)
    pos = np.arange(T, dtype=np.float64)
    inv = inv_freq(cfg)
    x = w["model.embed_tokens.weight"][np.asarray(ids)]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rmsnorm(x, w[p + "input_layernorm.weight"], eps)

        def proj(n):
            y = h @ w[p + "self_attn." + n + ".weight"].T
            b = w.get(p + "self_attn." + n + ".bias")
            return y if b is None else y + b
        q = rope_halves(proj("q_proj").reshape(T, H, D), pos, inv)
        k = rope_halves(proj("k_proj").reshape(T, KV, D), pos, inv)
        v = proj("v_proj").reshape(T, KV, D)
        rep = H // KV
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
        s = np.einsum("thd,shd->hts", q, k) / math.sqrt(D) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", s, v).reshape(T, H * D)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, w[p + "post_attention_layernorm.weight"], eps)
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, w["model.norm.weight"], eps)
    out = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    return x @ out.T
