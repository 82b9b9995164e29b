#!/usr/bin/env python3
"""make_vptq_fixture.py - write a Llama checkpoint (bt-small) in exactly the layout of a
VPTQ-community checkpoint (docs/research/quantizers.md 1.12), with numpy only: each decoder
linear is vector-quantized by a plain k-means (a few iterations on a sample, then every vector
assigned) of its normalised, permuted columns, vectors of v weights down a column, with a
residual codebook, codebook groups and outlier columns as the per-role table ROLES says.

usage: make_vptq_fixture.py SRC_MODEL OUT_DIR [--iters N]
writes OUT_DIR/fp16 (torch_dtype float16, config_for_layers, two shards + index) and
OUT_DIR/bf16 (the same codes, bfloat16 codebooks/scales, shared_layer_config, one file)."""
import argparse
import json
import os
import shutil
import sys
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vptq_st as st  # noqa: E402

# per module role: v, k1 (main), k2 (residual, 0 = none), G (group_num), outliers (n_out, v0,
# k0), enable_norm, enable_perm; all inside VPTQ's CUDA kernel limits. Together they cover every
# field: v 2/4/8/12 (12: rows % v != 0, bt's tail), 4..10-bit main and 4..10-bit residual
# indices, 15-bit codes straddling 32-bit words and groups starting at an odd bit (o_proj), 20-
# and 8-bit codes, outliers (8 columns, v0 = 4, k0 = 1024), norm and perm on and off. The cost
# of the k-means is about weights x (k1 + k2) / v per pass, hence the small codebooks where the
# tensors are big (4 bits/weight at v = 2).
ROLES = {
    "self_attn.q_proj": dict(v=4, k1=256, k2=256, G=1, out=(0, 0, 0), norm=True, perm=True),
    "self_attn.k_proj": dict(v=8, k1=256, k2=16, G=2, out=(0, 0, 0), norm=True, perm=True),
    "self_attn.v_proj": dict(v=12, k1=1024, k2=1024, G=1, out=(0, 0, 0), norm=False, perm=False),
    "self_attn.o_proj": dict(v=4, k1=256, k2=128, G=2, out=(8, 4, 1024), norm=True, perm=True),
    "mlp.gate_proj": dict(v=2, k1=16, k2=16, G=2, out=(0, 0, 0), norm=True, perm=True),
    "mlp.up_proj": dict(v=2, k1=16, k2=16, G=1, out=(0, 0, 0), norm=True, perm=False),
    "mlp.down_proj": dict(v=2, k1=16, k2=16, G=2, out=(8, 4, 1024), norm=True, perm=True),
}


def f16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


# ---- k-means ---------------------------------------------------------------------------------
def assign(X, C):
    """nearest centroid of each row of X (lowest index on ties up to rounding)"""
    Ct = np.ascontiguousarray(-2.0 * C.T, dtype=np.float32)
    cc = (C * C).sum(1).astype(np.float32)
    chunk = max(256, (1 << 18) // len(C))
    out = np.empty(len(X), dtype=np.int64)
    for i in range(0, len(X), chunk):
        d = X[i:i + chunk] @ Ct
        d += cc
        out[i:i + chunk] = d.argmin(1)
    return out


def kmeans(X, K, iters, rng, sample=4096):
    """centroids (K x d, rounded to f16: what the model dtype holds) and the codes of X"""
    S = X if len(X) <= sample else X[rng.choice(len(X), sample, replace=False)]
    C = S[rng.choice(len(S), K, replace=len(S) < K)].copy()
    for _ in range(iters):
        a = assign(S, C)
        cnt = np.bincount(a, minlength=K)
        for j in range(X.shape[1]):
            s = np.bincount(a, S[:, j], minlength=K)
            C[:, j] = np.where(cnt > 0, s / np.maximum(cnt, 1), C[:, j])
    C = f16(C)
    return C, assign(X, C)


# ---- one linear ------------------------------------------------------------------------------
def pack_rows(codes, t):
    """codes (..., gs) -> int32 (..., ceil(gs*t/32)): each row one little-endian bitstream"""
    gs = codes.shape[-1]
    words = (gs * t + 31) // 32
    bits = ((codes[..., None].astype(np.uint64) >> np.arange(t, dtype=np.uint64)) & 1).astype(np.uint8)
    bits = bits.reshape(codes.shape[:-1] + (gs * t,))
    pad = np.zeros(codes.shape[:-1] + (words * 32 - gs * t,), dtype=np.uint8)
    by = np.packbits(np.concatenate([bits, pad], -1), axis=-1, bitorder="little")
    return np.ascontiguousarray(by).view("<i4")


def vectors(Wp, cols, v):
    """vectors of v rows down each column of Wp[:, cols]: (nrb, len(cols), v), rows zero-padded"""
    M = Wp.shape[0]
    nrb = (M + v - 1) // v
    P = np.zeros((nrb * v, len(cols)), dtype=np.float32)
    P[:M] = Wp[:, cols]
    return P.reshape(nrb, v, len(cols)).transpose(0, 2, 1)


def quantize(W, c, iters, rng):
    """VPTQ tensors of one M x N linear (f32 values; the dtype is chosen when writing)"""
    M, N = W.shape
    v, k1, k2, G = c["v"], c["k1"], c["k2"], c["G"]
    n_out, v0, k0 = c["out"]
    gs = (N - n_out) // G
    assert G * gs + n_out == N
    out = {}
    if c["norm"]:
        bias = f16(W.mean(0))
        scale = f16(np.maximum(W.std(0), 1e-4))
        Wn = (W - bias) / scale
        out["weight_scale"], out["weight_bias"] = scale, bias
    else:
        Wn = W
    perm = np.argsort(-np.abs(Wn).sum(0), kind="stable") if c["perm"] else np.arange(N)
    if c["perm"]:
        out["perm"] = perm.astype(np.int16)
    Wp = Wn[:, perm]
    if n_out:
        X = vectors(Wp, np.arange(n_out), v0)
        OC, oi = kmeans(X.reshape(-1, v0), k0, iters, rng)
        out["outlier_centroids.weight"] = OC.reshape(1, -1)
        out["outlier_indices"] = oi.reshape(1, X.shape[0], n_out).astype(np.int16)
    b1, b2 = k1.bit_length() - 1, (k2.bit_length() - 1 if k2 else 0)
    cents, res, codes = [], [], []
    for g in range(G):
        X = vectors(Wp, n_out + g * gs + np.arange(gs), v)
        Xf = X.reshape(-1, v)
        C, a = kmeans(Xf, k1, iters, rng)
        code = a.astype(np.uint64)
        cents.append(C.reshape(-1))
        if k2:
            R, r = kmeans(Xf - C[a], k2, iters, rng)
            res.append(R.reshape(-1))
            code |= r.astype(np.uint64) << np.uint64(b1)
        codes.append(code.reshape(X.shape[0], gs))
    out["indices"] = pack_rows(np.stack(codes), b1 + b2)
    out["centroids.weight"] = np.stack(cents)
    if k2:
        out["res_centroids.weight"] = np.stack(res)
    return out


def layer_config(c, M, N):
    """a config_for_layers entry with exactly VPTQ's VQuantLinear constructor keys"""
    n_out, v0, k0 = c["out"]
    return {
        "bias": False, "enable_norm": c["norm"], "enable_perm": c["perm"],
        "group_num": c["G"], "group_size": (N - n_out) // c["G"],
        "in_features": N, "out_features": M,
        "indices_as_float": False, "is_indice_packed": True,
        "num_centroids": [k0 if n_out else -1, c["k1"]],
        "num_res_centroids": [-1, c["k2"] if c["k2"] else -1],
        "outlier_size": n_out, "vector_lens": [v0 if n_out else -1, c["v"]],
    }


# ---- writing ---------------------------------------------------------------------------------
FLOAT_PARTS = ("centroids.weight", "res_centroids.weight", "outlier_centroids.weight",
               "weight_scale", "weight_bias")


def as_dtype(a, dtype):
    return (a.astype(np.float16), "F16") if dtype == "fp16" else (st.f32_to_bf16(a), "BF16")


def write(out, src_dir, plain, quant, cfgs, dtype, shared, shards):
    os.makedirs(out, exist_ok=True)
    tensors = []
    for name, (dt, a) in plain.items():
        if dtype == "bf16" and dt == "BF16":
            tensors.append((name, "BF16", a))
        else:
            tensors.append((name,) + as_dtype(st.as_f32(dt, a), dtype)[::-1])
    for P, q in quant.items():
        for k, a in q.items():
            if k in FLOAT_PARTS:
                if dtype == "bf16" and k == "weight_bias":  # bf16 values f16 cannot hold
                    a = a.copy()
                    a[:3] = (3e-6, -5e-7, 1.1e-5)
                b, d = as_dtype(a, dtype)
                tensors.append((P + "." + k, d, b))
            else:
                tensors.append((P + "." + k, {np.int32: "I32", np.int16: "I16"}[a.dtype.type], a))
    tensors.sort(key=lambda x: x[0])
    st.write_model(out, tensors, shards)
    cfg = json.load(open(os.path.join(src_dir, "config.json")))
    cfg["dtype"] = cfg["torch_dtype"] = "float16" if dtype == "fp16" else "bfloat16"
    qc = {"quant_method": "vptq"}
    if shared:
        qc["shared_layer_config"] = {P.split(".")[-1]: c for P, c in cfgs.items()}
    else:
        qc["config_for_layers"] = cfgs
    cfg["quantization_config"] = qc
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(src_dir, fn)):
            shutil.copy(os.path.join(src_dir, fn), os.path.join(out, fn))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--iters", type=int, default=4)
    a = ap.parse_args()
    model = st.read_model(a.src)
    plain, quant, cfgs = {}, {}, {}
    for name in sorted(model):
        dt, arr = model[name]
        role = next((r for r in ROLES if name.endswith("." + r + ".weight")), None)
        if role is None or not name.startswith("model.layers."):
            plain[name] = (dt, arr)
            continue
        P = name[:-len(".weight")]
        W = st.as_f32(dt, arr)
        rng = np.random.default_rng(zlib.crc32(P.encode()))
        quant[P] = quantize(W, ROLES[role], a.iters, rng)
        cfgs[P] = layer_config(ROLES[role], *W.shape)
    write(os.path.join(a.out, "fp16"), a.src, plain, quant, cfgs, "fp16", False, 2)
    shared = {P: c for P, c in cfgs.items() if P.startswith("model.layers.0.")}
    write(os.path.join(a.out, "bf16"), a.src, plain, quant, shared, "bf16", True, 1)
    print("wrote %s/fp16 and %s/bf16: %d quantized linears" % (a.out, a.out, len(quant)))


if __name__ == "__main__":
    main()
