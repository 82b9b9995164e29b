"""i2s_fixture.py - bitnet.cpp I2_S GGUF files of the bitnet fixture model (bitnet_fixture.py),
written with numpy + gguf-py. gguf-py has no ggml type 36 (I2_S exists only in bitnet.cpp's
llama.cpp fork), so the tensor infos are added with the raw type id and the bytes written by hand:
n/4 bytes of 2-bit codes (code = trit + 1) in one of the three build-dependent orders, then a
32-byte trailer whose first 4 bytes are the tensor's float32 scale (docs/formats.md "bitnet.cpp
I2_S"). Metadata and the other tensors come from a GGUF of the same model (bt's TQ2_0 conversion),
the architecture renamed to one of the fork's names (bitnet, bitnet-25, bitnet-b1.58)."""
import numpy as np
from gguf import GGUFReader, GGUFWriter, GGUFValueType as VT

I2_S = 36
LAYOUTS = ("x86", "arm", "x86-1x4")
GGUF_LIN = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj"}


def encode(T, scale, layout):
    """ternary (rows, cols) int8 and its scale -> the I2_S bytes (codes + trailer) as uint8"""
    rows, cols = T.shape
    c = (T.astype(np.int16) + 1).astype(np.uint8)
    if layout == "x86-1x4":  # byte (g, col) holds rows 4g..4g+3, the first in the top two bits
        q = c.reshape(rows // 4, 4, cols)
    else:  # blocks of 128 (x86) / 64 (arm) flat elements; group k of a block at shift 6 - 2k
        blk = 128 if layout == "x86" else 64
        q = c.reshape(-1, 4, blk // 4)
    packed = (q[:, 0] << 6) | (q[:, 1] << 4) | (q[:, 2] << 2) | q[:, 3]
    trailer = np.zeros(32, np.uint8)
    trailer[:4] = np.frombuffer(np.float32(scale).tobytes(), np.uint8)
    return np.concatenate([packed.reshape(-1).astype(np.uint8), trailer])


def linear_of(name):
    """'blk.3.ffn_up.weight' -> 'model.layers.3.mlp.up_proj' (None for other tensors)"""
    p = name.split(".")
    if len(p) == 4 and p[0] == "blk" and p[2] in GGUF_LIN and p[3] == "weight":
        return f"model.layers.{p[1]}.{GGUF_LIN[p[2]]}"
    return None


def write(path, template, w, arch="bitnet", layout="x86", drop_keys=(), trailer_hook=None):
    """the model of GGUF template with every ternary linear as I2_S (trits and f32 scale from w,
    as bitnet_fixture.make returns). Keys bitnet.* become <arch>.*; drop_keys are left out;
    trailer_hook(name, bytes) may alter a tensor's bytes (corrupt files)"""
    r = GGUFReader(template)
    wr = GGUFWriter(path, arch)
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture" or key in drop_keys:
            continue
        k = arch + key[6:] if key.startswith("bitnet.") else key
        vt = VT(f.types[0])
        if vt == VT.ARRAY:
            wr.add_key_value(k, f.contents(), vt, sub_type=VT(f.types[-1]))
        else:
            wr.add_key_value(k, f.contents(), vt)
    blobs = []
    for t in r.tensors:
        lin = linear_of(t.name)
        if lin is not None:
            T, s = w[lin]
            b = encode(T, s, layout)
            if trailer_hook:
                b = trailer_hook(t.name, b)
            wr.add_tensor_info(t.name, T.shape, np.dtype(np.int8), b.nbytes, raw_dtype=I2_S)
        else:
            b = np.ascontiguousarray(t.data)
            shape = tuple(int(x) for x in reversed(t.shape[:len(t.shape)]))
            wr.add_tensor_info(t.name, shape, b.dtype, b.nbytes, raw_dtype=t.tensor_type)
        blobs.append(b)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_ti_data_to_file()
    for b in blobs:
        wr.write_tensor_data(b)
    wr.close()
