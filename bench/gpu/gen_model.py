#!/usr/bin/env python3
"""gen_model.py - a Llama-shaped GGUF with random weights, for speed tests only (its outputs mean
nothing): every 2-D weight (token_embd and output included) in one type - TQ2_0 (valid ternary
codes), Q4_0 or Q2_K (random code bytes) - with small finite fp16 block scales; norms 1 (F32).
The same shapes in the three types compare bt's TQ2_0 with llama.cpp's Q4_0 / Q2_K. The tokenizer (tokenizer.ggml.*) is copied from a
GGUF that bt wrote (e.g. bt-tiny converted), its vocabulary padded with control tokens
"<|bt_pad_N|>" to --vocab, so both bt and llama.cpp load the file. Default shape: Llama-3-8B
(4096 embd, 32 layers, 32/8 heads, 14336 ff, 128256 vocab).

usage: gen_model.py TOKENIZER_GGUF OUT_GGUF [--layers 32] [--embd 4096] [--ff 14336]
                    [--heads 32] [--kv-heads 8] [--vocab 128256] [--ctx 8192] [--seed 1]
                    [--type tq2_0|q4_0|q2_k]
"""
import argparse
import sys

import numpy as np
import gguf

# bytes per block and elements per block of each type (the GGUF/ggml block layouts)
TYPES = {
    "tq2_0": (gguf.GGMLQuantizationType.TQ2_0, 256, 66, gguf.LlamaFileType.MOSTLY_TQ2_0),
    "q4_0": (gguf.GGMLQuantizationType.Q4_0, 32, 18, gguf.LlamaFileType.MOSTLY_Q4_0),
    "q2_k": (gguf.GGMLQuantizationType.Q2_K, 256, 84, gguf.LlamaFileType.MOSTLY_Q2_K),
}


def f16_bytes(v):
    return np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)


def rows_of(kind, rng, rows, cols, scale):
    _, qk, bb, _ = TYPES[kind]
    if cols % qk:
        sys.exit(f"gen_model.py: {cols} columns are not a multiple of {qk}")
    nb = rows * cols // qk
    blk = np.empty((nb, bb), dtype=np.uint8)
    if kind == "tq2_0":  # 64 bytes of four 2-bit codes (0, 1, 2 = -1, 0, +1), then d
        valid = np.array([a | b << 2 | c << 4 | d << 6 for a in range(3) for b in range(3)
                          for c in range(3) for d in range(3)], dtype=np.uint8)
        blk[:, :64] = valid[rng.integers(0, 81, size=(nb, 64), dtype=np.uint8)]
        blk[:, 64:] = f16_bytes(scale)
    elif kind == "q4_0":  # d, then 16 bytes of 4-bit codes
        blk[:, :2] = f16_bytes(scale)
        blk[:, 2:] = rng.integers(0, 256, size=(nb, 16), dtype=np.uint8)
    else:  # q2_k: 16 scale/min bytes, 64 bytes of 2-bit codes, d, dmin
        blk[:, :80] = rng.integers(0, 256, size=(nb, 80), dtype=np.uint8)
        blk[:, 80:82] = f16_bytes(scale / 8)
        blk[:, 82:84] = f16_bytes(scale / 16)
    return blk.reshape(rows, cols // qk * bb)


def string_array(field):
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tokenizer_gguf")
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--embd", type=int, default=4096)
    ap.add_argument("--ff", type=int, default=14336)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--ctx", type=int, default=8192)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--type", choices=sorted(TYPES), default="tq2_0")
    a = ap.parse_args()
    if a.embd % a.heads or a.heads % a.kv_heads:
        sys.exit("gen_model.py: embd must divide by heads and heads by kv-heads")
    hd = a.embd // a.heads

    src = gguf.GGUFReader(a.tokenizer_gguf)
    f = src.fields
    if "tokenizer.ggml.tokens" not in f:
        sys.exit(f"gen_model.py: {a.tokenizer_gguf}: no tokenizer.ggml.tokens")
    tokens = string_array(f["tokenizer.ggml.tokens"])
    if len(tokens) > a.vocab:
        sys.exit(f"gen_model.py: the tokenizer has {len(tokens)} tokens, more than --vocab {a.vocab}")
    pad = a.vocab - len(tokens)
    types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data] \
        if "tokenizer.ggml.token_type" in f else [1] * len(tokens)
    tokens += [f"<|bt_pad_{i}|>" for i in range(pad)]
    types += [int(gguf.TokenType.CONTROL)] * pad

    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name(f"bt random {a.layers}L {a.embd}d {a.type}")
    w.add_context_length(a.ctx)
    w.add_embedding_length(a.embd)
    w.add_block_count(a.layers)
    w.add_feed_forward_length(a.ff)
    w.add_head_count(a.heads)
    w.add_head_count_kv(a.kv_heads)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(a.vocab)
    q, _, _, ftype = TYPES[a.type]
    w.add_file_type(ftype)
    w.add_tokenizer_model(bytes(f["tokenizer.ggml.model"].parts[-1]).decode())
    if "tokenizer.ggml.pre" in f:
        w.add_tokenizer_pre(bytes(f["tokenizer.ggml.pre"].parts[-1]).decode())
    w.add_token_list(tokens)
    w.add_token_types(types)
    if "tokenizer.ggml.merges" in f:
        w.add_token_merges(string_array(f["tokenizer.ggml.merges"]))
    for key, add in (("tokenizer.ggml.bos_token_id", w.add_bos_token_id),
                     ("tokenizer.ggml.eos_token_id", w.add_eos_token_id)):
        if key in f:
            add(int(f[key].parts[-1][0]))

    rng = np.random.default_rng(a.seed)
    ones = np.ones(a.embd, dtype=np.float32)
    w.add_tensor("token_embd.weight", rows_of(a.type, rng, a.vocab, a.embd, 0.02), raw_dtype=q)
    for il in range(a.layers):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", ones)
        for name, rows, cols in (("attn_q", a.embd, a.embd), ("attn_k", a.kv_heads * hd, a.embd),
                                 ("attn_v", a.kv_heads * hd, a.embd), ("attn_output", a.embd, a.embd),
                                 ("ffn_gate", a.ff, a.embd), ("ffn_up", a.ff, a.embd),
                                 ("ffn_down", a.embd, a.ff)):
            w.add_tensor(p + name + ".weight", rows_of(a.type, rng, rows, cols, 0.02), raw_dtype=q)
        w.add_tensor(p + "ffn_norm.weight", ones)
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", rows_of(a.type, rng, a.vocab, a.embd, 0.02), raw_dtype=q)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
