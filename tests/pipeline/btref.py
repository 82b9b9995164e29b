"""btref.py - independent numpy references for tests: safetensors reading (with json from the
standard library), HF->GGUF names, Q/K permutation, absmean/lsq ternary quantization."""
import json
import os
import re
import struct

import numpy as np


def read_safetensors(path):
    """dict name -> float32 array of one .safetensors file"""
    out = {}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        for name, e in hdr.items():
            if name == "__metadata__":
                continue
            b, en = e["data_offsets"]
            f.seek(base + b)
            raw = f.read(en - b)
            if e["dtype"] == "BF16":
                a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif e["dtype"] == "F16":
                a = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
            elif e["dtype"] == "F32":
                a = np.frombuffer(raw, dtype=np.float32)
            else:
                continue
            out[name] = a.reshape(e["shape"])
    return out


def write_safetensors_bf16(path, tensors):
    """write {name: float32 array} as BF16 (round to nearest even) safetensors"""
    hdr, blobs, off = {}, [], 0
    for name, a in tensors.items():
        u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
        b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
        hdr[name] = {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_model(folder):
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(folder, f)))
    return w


_MAP = [
    (r"model\.embed_tokens\.weight", "token_embd.weight"),
    (r"model\.norm\.weight", "output_norm.weight"),
    (r"lm_head\.weight", "output.weight"),
    (r"model\.layers\.(\d+)\.input_layernorm\.weight", r"blk.\1.attn_norm.weight"),
    (r"model\.layers\.(\d+)\.post_attention_layernorm\.weight", r"blk.\1.ffn_norm.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.q_proj\.weight", r"blk.\1.attn_q.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.k_proj\.weight", r"blk.\1.attn_k.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.v_proj\.weight", r"blk.\1.attn_v.weight"),
    (r"model\.layers\.(\d+)\.self_attn\.o_proj\.weight", r"blk.\1.attn_output.weight"),
    (r"model\.layers\.(\d+)\.mlp\.gate_proj\.weight", r"blk.\1.ffn_gate.weight"),
    (r"model\.layers\.(\d+)\.mlp\.up_proj\.weight", r"blk.\1.ffn_up.weight"),
    (r"model\.layers\.(\d+)\.mlp\.down_proj\.weight", r"blk.\1.ffn_down.weight"),
]


def gguf_name(hf):
    for pat, rep in _MAP:
        if re.fullmatch(pat, hf):
            return re.sub(pat, rep, hf)
    return hf


def permute_qk(w, n_head):
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def fp16(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


def round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _lanes(x):
    """sum over the last axis in 8 lanes (element i -> lane i % 8, sequential per lane), lanes
    combined pairwise: the summation order of plugins/absmean (float32 throughout)"""
    acc = np.zeros(x.shape[:-1] + (8,), dtype=np.float32)
    for i in range(0, x.shape[-1], 8):
        acc += x[..., i:i + 8]
    a = acc
    return ((a[..., 0] + a[..., 1]) + (a[..., 2] + a[..., 3])) + ((a[..., 4] + a[..., 5]) + (a[..., 6] + a[..., 7]))


def ternary_blocks(w, block=256, scale="lsq"):
    """codes (same shape as w) and per-block scales (rows, cols/block), BitNet absmean codes"""
    rows, cols = w.shape
    b = w.reshape(rows, cols // block, block).astype(np.float32)
    ab = np.abs(b)
    s = (_lanes(ab) / np.float32(block)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(s > 0, np.float32(1) / s, np.float32(0)).astype(np.float32)
    on = np.abs(b * inv[..., None]) >= np.float32(0.5)
    q = np.where(on, np.sign(b), 0).astype(np.float32)
    q[s == 0] = 0
    if scale == "lsq":
        num = _lanes(np.where(on, ab, np.float32(0)).astype(np.float32))
        den = on.sum(-1).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(den > 0, num / den, np.float32(0)).astype(np.float32)
    return q.reshape(rows, cols), s


def mtq_decode_interleaved(raw, planes, block, cols):
    """vectorized numpy decoder of bt's MTQ layout 0 rows (docs/formats.md): raw (rows, row_bytes)"""
    rows = raw.shape[0]
    nb = cols // block
    blocks = raw.reshape(rows, nb, -1)
    a = blocks[..., :2 * planes].copy().view(np.float16).astype(np.float32)  # (rows, nb, planes)
    C = min(block, 128)
    S = C // 4
    q = blocks[..., 2 * planes:].reshape(rows, nb, block // C, planes, S)
    t = np.concatenate([((q >> (2 * l)) & 3) for l in range(4)], axis=-1).astype(np.int8) - 1
    t = t.transpose(0, 1, 3, 2, 4).reshape(rows, nb, planes, block)           # (rows, nb, planes, block)
    return (a[..., None] * t).sum(axis=2).reshape(rows, cols)
