#!/usr/bin/env python3
"""check_gguf_py.py - gguf-py parses the file test_formats_gguf writes (plain, not compressed):
tensor list, ggml types, GGUF dims, the codebook part's bytes and the bt.fmt / bt.mtq keys
(docs/formats.md "Formats without a ggml type"). Usage: check_gguf_py.py <file.gguf>"""
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)


def field_value(r, key):
    f = r.fields.get(key)
    if f is None:
        return None
    vals = [f.parts[i] for i in f.data]
    if f.types and f.types[-1] == gguf.GGUFValueType.STRING:
        return [bytes(v).decode() for v in vals]
    return [int(v[0]) for v in vals]


def main(path):
    r = gguf.GGUFReader(path)
    t = {x.name: x for x in r.tensors}
    # name -> (ggml type, GGUF dims ne0.., what it is)
    want = {
        "f16.weight": (QT.F16, [8, 3]),
        "mtq.weight": (QT.I8, [72, 2]),          # 2 blocks of 36 bytes per row
        "lut.weight": (QT.I8, [16, 4]),          # 32 4-bit indices = 16 bytes per row
        "lut.weight.codebook": (QT.I8, [64]),    # the extra part: 16 f32
    }
    check(sorted(t) == sorted(want), f"tensors {sorted(t)}")
    for name, (ty, dims) in want.items():
        if name not in t:
            continue
        check(t[name].tensor_type == ty, f"{name}: type {t[name].tensor_type}")
        check([int(d) for d in t[name].shape] == dims, f"{name}: dims {list(t[name].shape)}")
    if "lut.weight.codebook" in t:
        cb = np.frombuffer(t["lut.weight.codebook"].data.tobytes(), "<f4")
        check(np.array_equal(cb, (np.arange(16, dtype=np.float32) - 7.5) * 0.25), f"codebook {cb}")
    if "lut.weight" in t:
        got = t["lut.weight"].data.tobytes()
        check(got == bytes((i * 37 + 11) & 255 for i in range(64)), "lut.weight bytes")
    check(field_value(r, "bt.fmt.lut.weight") == ["fixture_lut4"], "bt.fmt.lut.weight")
    check(field_value(r, "bt.fmt_args.lut.weight") == [0, 0, 0, 32], "bt.fmt_args.lut.weight")
    check(field_value(r, "bt.mtq.mtq.weight") == [2, 64, 0, 128], "bt.mtq.mtq.weight")
    check(field_value(r, "bt.fmt.mtq.weight") is None, "no bt.fmt key for MTQ")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
