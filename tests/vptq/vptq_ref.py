#!/usr/bin/env python3
"""vptq_ref.py - numpy dequantizer of VPTQ-community checkpoints, written from VPTQ's published
semantics (docs/research/quantizers.md 1.12; vptq ops/quant_gemm.py dequant): unpack each
group's little-endian index rows, main + residual centroids, outlier columns, drop the padding
rows, un-permute W[:, perm[p]] = Wp[:, p], denormalise W[:, k] = W[:, k] * scale[k] + bias[k].

Arithmetic modes:
  f32    the stored values (fp16/bf16) in float32, float32 sums and products (no fma)
  bt     the same after rounding every codebook/scale value to f16 (what bt's vq format stores)
  model  VPTQ's own arithmetic in the model dtype: each sum and product rounded to fp16 / bf16

usage: vptq_ref.py FOLDER [--mode f32|bt|model]   (prints one line per tensor)"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vptq_st as st  # noqa: E402

FLOAT_PARTS = ("centroids.weight", "res_centroids.weight", "outlier_centroids.weight",
               "weight_scale", "weight_bias")
ROLE_SHAPE = {"q_proj": ("q", "e"), "k_proj": ("kv", "e"), "v_proj": ("kv", "e"),
              "o_proj": ("e", "q"), "gate_proj": ("ff", "e"), "up_proj": ("ff", "e"),
              "down_proj": ("e", "ff")}


def layer_entry(qc, P):
    e = qc.get("config_for_layers", {}).get(P)
    return e if e is not None else qc.get("shared_layer_config", {}).get(P.split(".")[-1])


def model_shape(cfg, P):
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    dims = {"e": cfg["hidden_size"], "ff": cfg["intermediate_size"],
            "q": cfg["num_attention_heads"] * hd,
            "kv": cfg.get("num_key_value_heads", cfg["num_attention_heads"]) * hd}
    m, n = ROLE_SHAPE[P.split(".")[-1]]
    return dims[m], dims[n]


class Arith:
    """value conversion and rounding of one mode"""

    def __init__(self, mode, dtype):
        self.mode, self.dtype = mode, dtype

    def val(self, dt, a):
        x = st.as_f32(dt, a)
        if self.mode == "bt":
            x = x.astype(np.float16).astype(np.float32)
        return x

    def rnd(self, x):
        if self.mode != "model":
            return x
        if self.dtype == "BF16":
            return st.round_bf16(x)
        return x.astype(np.float16).astype(np.float32)


def unpack(idx, gs, t):
    """int32 (G, nrb, W) -> codes (G, nrb, gs)"""
    by = np.ascontiguousarray(idx).astype("<i4").view(np.uint8)
    bits = np.unpackbits(by, axis=-1, bitorder="little")[..., :gs * t]
    bits = bits.reshape(idx.shape[0], idx.shape[1], gs, t).astype(np.uint64)
    return (bits << np.arange(t, dtype=np.uint64)).sum(-1)


def dequant_layer(T, P, e, M, N, mode):
    dtype = T[P + ".centroids.weight"][0]
    A = Arith(mode, dtype)
    v0, v = e["vector_lens"]
    k0, k1 = e["num_centroids"]
    k2 = e["num_res_centroids"][1]
    n_out, G, gs = e["outlier_size"], e["group_num"], e["group_size"]
    b1 = int(k1).bit_length() - 1
    b2 = int(k2).bit_length() - 1 if k2 > 0 else 0
    nrb = (M + v - 1) // v
    codes = unpack(T[P + ".indices"][1], gs, b1 + b2)
    C = A.val(*T[P + ".centroids.weight"]).reshape(G, k1, v)
    R = A.val(*T[P + ".res_centroids.weight"]).reshape(G, k2, v) if k2 > 0 else None
    Wp = np.zeros((max(nrb * v, M), N), dtype=np.float32)
    for g in range(G):
        main = (codes[g] & np.uint64(k1 - 1)).astype(np.int64)
        vec = C[g][main]                                        # (nrb, gs, v)
        if R is not None:
            vec = A.rnd(vec + R[g][(codes[g] >> np.uint64(b1)).astype(np.int64)])
        Wp[:nrb * v, n_out + g * gs:n_out + (g + 1) * gs] = vec.transpose(0, 2, 1).reshape(nrb * v, gs)
    Wp = Wp[:M]
    if n_out > 0:
        OC = A.val(*T[P + ".outlier_centroids.weight"]).reshape(k0, v0)
        oi = T[P + ".outlier_indices"][1][0].astype(np.int64) & 0xFFFF   # (nrb0, n_out)
        Wo = OC[oi].transpose(0, 2, 1).reshape(-1, n_out)
        Wp[:, :n_out] = Wo[:M]
    if e.get("enable_perm"):
        perm = T[P + ".perm"][1].astype(np.int64) & 0xFFFF
        W = np.empty_like(Wp)
        W[:, perm] = Wp
    else:
        W = Wp
    if e.get("enable_norm"):
        s = A.val(*T[P + ".weight_scale"])
        b = A.val(*T[P + ".weight_bias"])
        W = A.rnd(A.rnd(W * s[None, :]) + b[None, :])
    return W.astype(np.float32)


def quantized_layers(T, qc):
    return sorted(n[:-len(".indices")] for n in T if n.endswith(".indices") and
                  layer_entry(qc, n[:-len(".indices")]) is not None)


def dequant(folder, mode="f32"):
    """{HF name: float32 array} of every tensor; quantized linears as P.weight"""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    qc = cfg["quantization_config"]
    T = st.read_model(folder)
    out, done = {}, set()
    for P in quantized_layers(T, qc):
        e = layer_entry(qc, P)
        M, N = model_shape(cfg, P)
        out[P + ".weight"] = dequant_layer(T, P, e, M, N, mode)
        done.update(P + "." + k for k in ("indices", "outlier_indices", "perm") + FLOAT_PARTS)
    for n, (dt, a) in T.items():
        if n not in done:
            out[n] = st.as_f32(dt, a)
    return out


def count_inexact(folder):
    """(values converted, of which not exact in f16) over the quantized layers' float parts"""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    T = st.read_model(folder)
    conv = inexact = 0
    for P in quantized_layers(T, cfg["quantization_config"]):
        for k in FLOAT_PARTS:
            if P + "." + k not in T or T[P + "." + k][0] == "F16":
                continue
            x = st.as_f32(*T[P + "." + k])
            conv += x.size
            inexact += int((x.astype(np.float16).astype(np.float32) != x).sum())
    return conv, inexact


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--mode", default="f32", choices=("f32", "bt", "model"))
    a = ap.parse_args()
    for n, w in sorted(dequant(a.folder, a.mode).items()):
        print("%-50s %-14s mean %+.6f rms %.6f" % (n, "x".join(map(str, w.shape)), w.mean(),
                                                   np.sqrt((w.astype(np.float64) ** 2).mean())))


if __name__ == "__main__":
    main()
