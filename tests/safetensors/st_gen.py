"""st_gen.py - build safetensors byte images (valid or deliberately broken) for the tests and the
fuzz seed corpus, and read them back independently with json + numpy."""
import json
import struct

import numpy as np

DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1}


def raw(header_bytes, data=b"", length=None):
    """u64 length + header bytes + data; length overrides the stored header length"""
    n = len(header_bytes) if length is None else length
    return struct.pack("<Q", n) + header_bytes + data


def pack(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes) in data order -> a valid file image"""
    hdr, data, off = {}, b"", 0
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dtype, shape, b in tensors:
        hdr[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return raw(h, data)


def arr_bytes(dtype, shape, seed=0):
    """deterministic content for a tensor"""
    n = int(np.prod(shape)) if len(shape) else 1
    rng = np.random.default_rng(seed)
    if dtype == "BF16":
        f = rng.standard_normal(n).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    np_t = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
            "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8}[dtype]
    if np.issubdtype(np_t, np.floating):
        return rng.standard_normal(n).astype(np_t).tobytes()
    return rng.integers(-100, 100, n).astype(np_t).tobytes()


def read(path):
    """independent reader: {name: (dtype, shape, raw bytes)} (metadata dropped)"""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    hdr = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], tuple(v["shape"]), blob[base + b:base + e])
    return out


def checksum(b):
    """sum of byte[i] * (i + 1) mod 2**64 (same as st_dump.c)"""
    a = np.frombuffer(b, dtype=np.uint8).astype(np.uint64)
    w = np.arange(1, len(a) + 1, dtype=np.uint64)
    return int(np.sum(a * w, dtype=np.uint64))
