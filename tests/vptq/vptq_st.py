"""vptq_st.py - safetensors files with json + numpy only (the safetensors package's numpy API
cannot hold bf16 without ml_dtypes): bf16 is kept as its uint16 bits, with helpers to and from
float32, round to nearest even."""
import json
import os
import struct

import numpy as np

NP_OF = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
         "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """round to nearest even (no NaN inputs)"""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def round_bf16(x):
    return bf16_to_f32(f32_to_bf16(x))


def read_file(path):
    """{name: (dtype string, numpy array)}; BF16 arrays are uint16 bits"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        b, e_ = e["data_offsets"]
        a = np.frombuffer(data[b:e_], dtype=NP_OF[e["dtype"]]).reshape(e["shape"])
        out[name] = (e["dtype"], a)
    return out


def read_model(folder):
    """every tensor of a folder (model.safetensors or an index with shards)"""
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        files = sorted(set(json.load(open(idx))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        out.update(read_file(os.path.join(folder, fn)))
    return out


def as_f32(dtype, a):
    return bf16_to_f32(a) if dtype == "BF16" else a.astype(np.float32)


def write_file(path, tensors):
    """tensors: list of (name, dtype string, numpy array of the matching numpy dtype)"""
    hdr, off = {}, 0
    for name, dt, a in tensors:
        nb = a.size * a.itemsize
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, dt, a in tensors:
            assert a.dtype == np.dtype(NP_OF[dt]), (dt, a.dtype)
            f.write(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())


def write_model(folder, tensors, shards=1):
    """model.safetensors, or `shards` files + model.safetensors.index.json"""
    if shards <= 1:
        write_file(os.path.join(folder, "model.safetensors"), tensors)
        return
    per = (len(tensors) + shards - 1) // shards
    wm = {}
    for s in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = tensors[s * per:(s + 1) * per]
        write_file(os.path.join(folder, fn), part)
        for name, _, _ in part:
            wm[name] = fn
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": wm}, f, indent=1)
