#!/usr/bin/env python3
"""test_gguf_types.py - every ggml type bt decodes, bit for bit against gguf-py's numpy
dequantizers (gguf.quants.dequantize), on random valid blocks written with gguf-py's GGUFWriter;
the same file converted by `bt-pipeline run` (method none, keep_type f32) holds exactly those
values; a type bt cannot decode (iq2_xxs) is listed by the reader and by `inspect` (text and
--json) and refused by name when read; inspect's shapes (ne0 first), types and bytes agree with
gguf-py's GGUFReader.
Usage: test_gguf_types.py <test_gguf binary> <reader.so> <bt-pipeline> <workdir>"""
import json
import os
import subprocess
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)


# byte offsets of the f16 fields (scales, mins) in one block of each type: they get finite
# random values, every other byte is random (all values of the other fields are valid)
F16_FIELDS = {
    QT.Q4_0: [0], QT.Q4_1: [0, 2], QT.Q5_0: [0], QT.Q5_1: [0, 2], QT.Q8_0: [0],
    QT.Q2_K: [80, 82], QT.Q3_K: [108], QT.Q4_K: [0, 2], QT.Q5_K: [0, 2], QT.Q6_K: [208],
    QT.IQ4_NL: [0], QT.IQ4_XS: [0],
}
BT_NAME = {QT.Q4_0: "q4_0", QT.Q4_1: "q4_1", QT.Q5_0: "q5_0", QT.Q5_1: "q5_1", QT.Q8_0: "q8_0",
           QT.Q2_K: "q2_k", QT.Q3_K: "q3_k", QT.Q4_K: "q4_k", QT.Q5_K: "q5_k", QT.Q6_K: "q6_k",
           QT.IQ4_NL: "iq4_nl", QT.IQ4_XS: "iq4_xs", QT.BF16: "bf16", QT.F16: "f16",
           QT.F32: "f32", QT.TQ1_0: "tq1_0", QT.TQ2_0: "tq2_0", QT.IQ2_XXS: "iq2_xxs"}


def finite_f16(rng, n):
    """random finite f16 bit patterns of both signs, normals and subnormals"""
    h = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    exp = (h >> 10) & 0x1F
    h[exp == 0x1F] &= np.uint16(0xBFFF)  # inf/nan -> exponent 15 (finite)
    return h


def random_blocks(rng, qt, nblocks):
    blk, size = gguf.GGML_QUANT_SIZES[qt]
    raw = rng.integers(0, 256, (nblocks, size), dtype=np.uint32).astype(np.uint8)
    for off in F16_FIELDS.get(qt, []):
        raw[:, off:off + 2] = finite_f16(rng, nblocks).view(np.uint8).reshape(nblocks, 2)
    return raw


def main():
    exe, reader, bt, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "types.gguf")
    rng = np.random.default_rng(13)
    w = gguf.GGUFWriter(path, "llama")
    w.add_string("test.long_string", "x" * 300)
    w.add_array("test.long_array", list(range(100)))
    tensors = {}
    rows = 3
    for qt in F16_FIELDS:
        blk, size = gguf.GGML_QUANT_SIZES[qt]
        nb = 2 if blk == 256 else 8  # per row
        raw = random_blocks(rng, qt, rows * nb).reshape(rows, nb * size)
        tensors[f"t.{BT_NAME[qt]}"] = (raw, qt)
    x = rng.standard_normal((rows, 512)).astype(np.float32)
    tensors["t.tq1_0"] = (gguf.quants.quantize(x, QT.TQ1_0), QT.TQ1_0)
    tensors["t.tq2_0"] = (gguf.quants.quantize(x, QT.TQ2_0), QT.TQ2_0)
    tensors["t.f16"] = (finite_f16(rng, rows * 64).view(np.float16).reshape(rows, 64), QT.F16)
    b16 = rng.integers(0, 1 << 16, rows * 64, dtype=np.uint32).astype(np.uint16)
    b16[((b16 >> 7) & 0xFF) == 0xFF] &= np.uint16(0xBFFF)  # no inf/nan
    tensors["t.bf16"] = (b16.view(np.uint8).reshape(rows, 128), QT.BF16)
    tensors["t.f32"] = (rng.standard_normal((rows, 2, 16)).astype(np.float32), QT.F32)
    tensors["t.iq2_xxs"] = (rng.integers(0, 256, (rows, 66), dtype=np.uint32).astype(np.uint8), QT.IQ2_XXS)
    for name, (data, qt) in tensors.items():
        w.add_tensor(name, data, raw_dtype=None if qt in (QT.F32, QT.F16) else qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ref = gguf.GGUFReader(path)
    dump = os.path.join(work, "dump")
    os.makedirs(dump, exist_ok=True)
    out = subprocess.run([exe, "dump", reader, path, dump], capture_output=True, text=True)
    check(out.returncode == 0, f"dump failed: {out.stderr}")
    d = json.loads(out.stdout)
    check("error" not in d, f"reader refused the file: {d.get('msg')}")
    dt = {k["name"]: k for k in d.get("tensors", [])}
    for t in ref.tensors:
        k = dt.get(t.name)
        check(k is not None and k["fmt"] == BT_NAME[t.tensor_type], f"{t.name}: listed as {k and k['fmt']}")
        check(k is not None and k["nbytes"] == t.n_bytes, f"{t.name}: bytes")
        f32 = os.path.join(dump, t.name + ".f32")
        if t.tensor_type == QT.IQ2_XXS:
            check(not os.path.exists(f32), f"{t.name}: an iq2_xxs tensor was decoded")
            continue
        check(os.path.exists(f32), f"{t.name}: not decoded")
        if not os.path.exists(f32):
            continue
        got = np.fromfile(f32, np.float32)
        if t.tensor_type in (QT.F32, QT.F16):
            want = np.asarray(t.data).astype(np.float32).reshape(-1)
        else:
            want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        check(got.shape == want.shape and np.isfinite(want).all(), f"{t.name}: shape / finite reference")
        same = got.shape == want.shape and np.array_equal(got.view(np.uint32), want.view(np.uint32))
        if not same and got.shape == want.shape:
            i = int(np.argmax(got.view(np.uint32) != want.view(np.uint32)))
            print(f"  {t.name}: first difference at {i}: bt {got[i]!r} gguf-py {want[i]!r}", file=sys.stderr)
        check(same, f"{t.name}: bt's decode differs from gguf-py's dequantize (bit for bit)")
    print(f"{len(ref.tensors) - 1} types decoded bit-exactly as gguf-py does, on "
          f"{sum(int(np.prod(t.shape)) for t in ref.tensors)} elements")

    # inspect: text and JSON, not fatal on iq2_xxs; ne0-first shapes and bytes as gguf-py reads
    p = subprocess.run([bt, "inspect", path], capture_output=True, text=True)
    check(p.returncode == 0, f"inspect failed ({p.returncode}): {p.stderr}")
    line = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("t.iq2_xxs")]
    check(len(line) == 1 and "iq2_xxs" in line[0] and "cannot decode" in line[0], f"inspect iq2_xxs line: {line}")
    check("... (300 bytes)" in p.stdout and "[100 x i32] 0 1 2 3 4 5 6 7 ..." in p.stdout,
          "inspect: long string not cut or long array not summarised")
    p = subprocess.run([bt, "inspect", "--json", path], capture_output=True, text=True)
    check(p.returncode == 0, f"inspect --json failed: {p.stderr}")
    try:
        j = json.loads(p.stdout)
    except ValueError:
        j = {}
        check(False, "inspect --json is not JSON")
    jt = {t["name"]: t for t in j.get("tensors", [])}
    total = 0
    for t in ref.tensors:
        k = jt.get(t.name, {})
        check(k.get("ne") == [int(x) for x in t.shape], f"{t.name}: inspect ne {k.get('ne')} != gguf-py {list(t.shape)}")
        check(k.get("type") == BT_NAME[t.tensor_type] and k.get("bytes") == t.n_bytes, f"{t.name}: inspect type/bytes {k}")
        check(k.get("decodable") == (t.tensor_type != QT.IQ2_XXS), f"{t.name}: decodable flag")
        total += int(t.n_bytes)
    check(j.get("tensor_bytes") == total and j.get("undecodable_tensors") == 1, "inspect totals")
    check(j.get("file_bytes") == os.path.getsize(path), "inspect file size")
    kv = {k["key"]: k for k in j.get("metadata", [])}
    la = kv.get("test.long_array", {})
    check(la.get("n") == 100 and la.get("head") == list(range(8)), f"inspect --json array summary {la}")

    # the same tensors (all but iq2_xxs) through a conversion: reader row chunks -> f32 output
    path2 = os.path.join(work, "types2.gguf")
    w = gguf.GGUFWriter(path2, "llama")
    for name, (data, qt) in tensors.items():
        if qt != QT.IQ2_XXS:
            w.add_tensor(name, data, raw_dtype=None if qt in (QT.F32, QT.F16) else qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ini2 = os.path.join(work, "f32.ini")
    with open(ini2, "w") as f:
        f.write(f"[input]\npath = {path2}\n[quantize]\nmethod = none\n[output]\npath = {work}/f32.gguf\nkeep_type = f32\n")
    p = subprocess.run([bt, "-q", "run", ini2], capture_output=True, text=True)
    check(p.returncode == 0, f"conversion of the decodable types to f32 failed: {p.stderr.strip()[-300:]}")
    if p.returncode == 0:
        outt = {t.name: t for t in gguf.GGUFReader(f"{work}/f32.gguf").tensors}
        for t in gguf.GGUFReader(path2).tensors:
            o = outt.get(t.name)
            if t.tensor_type in (QT.F32, QT.F16):
                want = np.asarray(t.data).astype(np.float32).reshape(-1)
            else:
                want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            got = np.asarray(o.data).reshape(-1) if o is not None else None
            check(o is not None and o.tensor_type == QT.F32 and got.shape == want.shape and
                  np.array_equal(got.view(np.uint32), want.view(np.uint32)),
                  f"{t.name}: converted f32 differs from gguf-py's dequantize")

    # reading the iq2_xxs tensor is refused naming it and its type
    ini = os.path.join(work, "q.ini")
    with open(ini, "w") as f:
        f.write(f"[input]\npath = {path}\n[quantize]\nmethod = none\n[output]\npath = {work}/out.gguf\nkeep_type = f16\n")
    p = subprocess.run([bt, "-q", "run", ini], capture_output=True, text=True)
    check(p.returncode != 0 and "iq2_xxs" in p.stderr and not os.path.exists(f"{work}/out.gguf"),
          f"run on an iq2_xxs tensor: rc {p.returncode}, {p.stderr.strip()[-300:]}")
    if FAILS:
        print(f"{len(FAILS)} failures", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
