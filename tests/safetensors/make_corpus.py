"""make_corpus.py - regenerate the seed corpus for fuzz_st_header (ok_* must parse, bad_* must
fail). Usage: python3 make_corpus.py [dir]  (default: ./corpus next to this script)"""
import json
import os
import sys

from st_gen import arr_bytes, pack, raw


def cases():
    yield "ok_empty", raw(b"{}")
    yield "ok_meta_only", pack([], metadata={"format": "pt"})
    yield "ok_llama_like", pack(
        [("model.embed_tokens.weight", "BF16", (16, 8), arr_bytes("BF16", (16, 8), 1)),
         ("model.layers.0.self_attn.q_proj.weight", "BF16", (8, 8), arr_bytes("BF16", (8, 8), 2)),
         ("model.layers.0.input_layernorm.weight", "F32", (8,), arr_bytes("F32", (8,), 3)),
         ("model.norm.weight", "F16", (8,), arr_bytes("F16", (8,), 4))],
        metadata={"format": "pt"})
    yield "ok_dtypes", pack([(d, d, (2, 3), arr_bytes(d, (2, 3), i)) for i, d in
                             enumerate(["F64", "I64", "I32", "I16", "I8", "U8"])])
    yield "ok_scalar_zero", pack([("s", "F32", (), arr_bytes("F32", (), 0)),
                                  ("z", "F32", (0, 4), b""), ("v", "I8", (3,), b"abc")])
    yield "ok_ws", raw(b'  \n{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}   ', b"xy")
    t = lambda b, e, s: {"dtype": "U8", "shape": [s], "data_offsets": [b, e]}
    js = lambda o: json.dumps(o).encode()
    yield "bad_short", b"\x05\x00\x00"
    yield "bad_len_eof", raw(b"{}", length=1000)
    yield "bad_len_huge", raw(b"{}", length=1 << 62)
    yield "bad_json", raw(b'{"a":}')
    yield "bad_json_trunc", raw(b'{"a":{"dtype":"U8"')
    yield "bad_not_object", raw(b"[1,2]")
    yield "bad_trailing", raw(b"{} x")
    yield "bad_overlap", raw(js({"a": t(0, 4, 4), "b": t(2, 6, 4)}), b"123456")
    yield "bad_hole", raw(js({"a": t(0, 2, 2), "b": t(4, 6, 2)}), b"123456")
    yield "bad_range", raw(js({"a": t(0, 8, 8)}), b"1234")
    yield "bad_tail", raw(js({"a": t(0, 2, 2)}), b"1234")
    yield "bad_size", raw(js({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}), b"x" * 8)
    yield "bad_dtype", raw(js({"a": {"dtype": "X9", "shape": [1], "data_offsets": [0, 1]}}), b"x")
    yield "bad_f8", raw(js({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}), b"x")
    yield "bad_dup", raw(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                         b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"xy")
    yield "bad_overflow", raw(js({"a": {"dtype": "F32", "shape": [1 << 62, 1 << 62],
                                        "data_offsets": [0, 0]}}))
    yield "bad_neg", raw(js({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}))
    yield "bad_5d", raw(js({"a": {"dtype": "U8", "shape": [1, 1, 1, 1, 1], "data_offsets": [0, 1]}}), b"x")
    yield "bad_meta", raw(js({"__metadata__": {"n": 1}}))
    yield "bad_offsets3", raw(js({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}), b"x")
    yield "bad_nul_name", raw(b'{"a\\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x")
    yield "bad_utf8", raw(b'{"a\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(d, exist_ok=True)
    for name, blob in cases():
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
