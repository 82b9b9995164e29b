#!/usr/bin/env python3
"""make_corpus.py - (re)generate the seed corpora of tests/fuzz/corpus/<target>/ (small valid
files; the regression inputs, named crash-*/leak-*/ub-*, are kept). Usage:
    tests/fuzz/make_corpus.py BUILD_DIR SHARED_DIR
BUILD_DIR/bin/bt-pipeline writes the GGUF seeds (TQ2_0, TQ1_0, Q8_0, MTQ, zstd) from a tiny
synthetic Llama model; SHARED_DIR/models/bt-tiny gives the real config/tokenizer files."""
import json, os, struct, subprocess, sys, tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
SEP = b"\n--8<--\n"  # FZ_SEP of fuzz_util.h


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, meta=None):
    """tensors: list of (name, dtype str, np array of raw values already in that dtype's bytes)"""
    hdr, off, blobs = {}, 0, []
    if meta:
        hdr["__metadata__"] = meta
    for name, dt, arr in tensors:
        b = arr.tobytes()
        hdr[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def tiny_model(rng, n_embd=256, n_ff=256, n_vocab=256):
    """a 1-layer Llama in HF names (f32 / bf16), matching tiny_config()"""
    def w(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)
    def bf16(a):
        return (a.view(np.uint32) >> 16).astype(np.uint16)
    kv = 128
    t = [("model.embed_tokens.weight", "BF16", bf16(w(n_vocab, n_embd))),
         ("model.norm.weight", "F32", np.ones(n_embd, np.float32)),
         ("model.layers.0.input_layernorm.weight", "F32", np.ones(n_embd, np.float32)),
         ("model.layers.0.post_attention_layernorm.weight", "F32", np.ones(n_embd, np.float32))]
    for n, shp in [("self_attn.q_proj", (n_embd, n_embd)), ("self_attn.k_proj", (kv, n_embd)),
                   ("self_attn.v_proj", (kv, n_embd)), ("self_attn.o_proj", (n_embd, n_embd)),
                   ("mlp.gate_proj", (n_ff, n_embd)), ("mlp.up_proj", (n_ff, n_embd)),
                   ("mlp.down_proj", (n_embd, n_ff))]:
        t.append(("model.layers.0.%s.weight" % n, "BF16", bf16(w(*shp))))
    return t


def tiny_config(**kw):
    c = {"architectures": ["LlamaForCausalLM"], "hidden_size": 256, "intermediate_size": 256,
         "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1,
         "vocab_size": 256, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
         "rope_theta": 10000.0, "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 1}
    c.update(kw)
    return json.dumps(c, indent=1)


def small_tokenizer(shared, n_vocab=300):
    """bt-tiny's byte-level BPE cut to its first n_vocab tokens and the merges inside them"""
    t = json.load(open(os.path.join(shared, "models/bt-tiny/tokenizer.json")))
    vocab = {k: v for k, v in t["model"]["vocab"].items() if v < n_vocab}
    merges = []
    for m in t["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    t["model"]["vocab"], t["model"]["merges"] = vocab, merges
    t["added_tokens"] = [a for a in t["added_tokens"] if a["id"] < n_vocab]
    return json.dumps(t, ensure_ascii=False)


def sp_tokenizer():
    """a SentencePiece-style BPE (Metaspace, byte fallback), like Llama 2's"""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for i in range(256):
        vocab["<0x%02X>" % i] = 3 + i
    for p in ["\u2581", "\u2581t", "h", "e", "\u2581th", "\u2581the", "a", "n", "d", "\u2581a",
              "\u2581an", "\u2581and", "t", "\u2581"+"in"]:
        vocab.setdefault(p, len(vocab))
    vocab.setdefault("i", len(vocab))
    vocab.setdefault("in", len(vocab))
    merges = ["\u2581 t", "\u2581t h", "\u2581th e", "\u2581 a", "\u2581a n", "\u2581an d", "i n"]
    t = {"version": "1.0", "added_tokens": [
            {"id": 0, "content": "<unk>", "special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False},
            {"id": 1, "content": "<s>", "special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False},
            {"id": 2, "content": "</s>", "special": True, "normalized": False, "lstrip": False, "rstrip": False, "single_word": False}],
         "normalizer": {"type": "Sequence", "normalizers": [
             {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
         "pre_tokenizer": None,
         "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                       {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
         "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                   "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                   "vocab": vocab, "merges": merges}}
    return json.dumps(t, ensure_ascii=False)


def btcal(entries, tokens=100):
    out = b"BTCAL1\0\0" + struct.pack("<IIQII", 1, len(entries), tokens, 2, 64)
    for names, n, full in entries:
        nb = names.encode()
        out += struct.pack("<I", len(nb)) + nb + struct.pack("<IIQ", n, 1 if full else 0, tokens)
        out += np.arange(1, n + 1, dtype=np.float64).tobytes()
        if full:
            out += (np.eye(n, dtype=np.float32) * 2).tobytes()
    return out


def gguf_seeds(build, work, rng):
    model = os.path.join(work, "m")
    os.makedirs(model)
    # a few small tensors (rows of 256: one TQ/MTQ block) keep the seeds a few KB
    def w(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)
    t = [("model.embed_tokens.weight", "F32", w(4, 256)),
         ("model.norm.weight", "F32", np.ones(256, np.float32)),
         ("model.layers.0.self_attn.q_proj.weight", "F32", w(8, 256)),
         ("model.layers.0.self_attn.k_proj.weight", "F32", w(4, 256)),
         ("model.layers.0.mlp.down_proj.weight", "F32", w(3, 512))]
    with open(os.path.join(model, "model.safetensors"), "wb") as f:
        f.write(safetensors(t))
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write(tiny_config(vocab_size=4, num_attention_heads=1, num_key_value_heads=1))
    runs = [("tq2_0", "method = absmean\n", "type = tq2_0\nkeep_type = f16\n"),
            ("tq1_0_zstd", "method = absmean\n", "type = tq1_0\nkeep_type = bf16\ncompress = zstd\n"),
            ("q8_0", "method = absmean\n", "type = tq2_0\nkeep_type = q8_0\n"),
            ("mtq2", "method = residual\nbases = 2\n", "type = mtq\n"),
            ("mtq2_zstd", "method = residual\nbases = 2\n", "type = mtq\ncompress = zstd\n")]
    for name, q, o in runs:
        out = os.path.join(work, name + ".gguf")
        ini = os.path.join(work, name + ".ini")
        with open(ini, "w") as f:
            f.write("[input]\npath = %s\n[quantize]\n%skeep = *embed_tokens*\n[output]\npath = %s\n%s"
                    % (model, q, out, o))
        r = subprocess.run([os.path.join(build, "bin", "bt-pipeline"), "run", ini],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("bt-pipeline %s: %s%s" % (name, r.stdout, r.stderr))
        put("gguf", "seed-" + name + ".gguf", open(out, "rb").read())


def main():
    build, shared = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(1)
    tiny = os.path.join(shared, "models/bt-tiny")
    with tempfile.TemporaryDirectory() as work:
        gguf_seeds(build, work, rng)
    # safetensors: single file; sharded (index + 2 shards + config + tokenizer)
    t = tiny_model(rng, n_embd=32, n_ff=32, n_vocab=16)
    cfg = tiny_config(hidden_size=32, intermediate_size=32, num_attention_heads=2,
                      num_key_value_heads=1, vocab_size=16)
    put("safetensors", "seed-single.st", safetensors(t, {"format": "pt"}))
    a, b = t[:6], t[6:]
    idx = {"metadata": {"total_size": 0}, "weight_map": {n: "a.safetensors" for n, _, _ in a}}
    idx["weight_map"].update({n: "b.safetensors" for n, _, _ in b})
    put("safetensors", "seed-sharded.txt", SEP.join([json.dumps(idx).encode(), safetensors(a),
                                                    safetensors(b), cfg.encode()]))
    put("safetensors", "seed-sharded-tok.txt", SEP.join([json.dumps(idx).encode(), safetensors(a),
                                                        safetensors(b), cfg.encode(),
                                                        sp_tokenizer().encode()]))
    # config.json
    put("hf_config", "seed-bt-tiny.json", open(os.path.join(tiny, "config.json"), "rb").read())
    put("hf_config", "seed-llama3-rope.json", tiny_config(rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}, eos_token_id=[1, 2]))
    put("hf_config", "seed-linear-rope.json", tiny_config(rope_scaling={"type": "linear", "factor": 2.0},
                                                          head_dim=64, bos_token_id=None))
    # tokenizer.json (+ tokenizer_config.json)
    tcfg = open(os.path.join(tiny, "tokenizer_config.json"), "rb").read()
    put("hf_tokenizer", "seed-bytelevel.json", small_tokenizer(shared))
    put("hf_tokenizer", "seed-bytelevel-cfg.txt", small_tokenizer(shared).encode() + SEP + tcfg)
    put("hf_tokenizer", "seed-sentencepiece.json", sp_tokenizer())
    # BPE encode: first byte = parse_special, then text
    for i, s in enumerate(["\0In the beginning God created the heaven and the earth.\n",
                           "\1<|begin_of_text|>Hello <|end_of_text|> world",
                           "\0  tabs\tand\r\nnewlines 12345 don't I'm",
                           "\0\xc3\xa9t\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xff\xfe invalid"]):
        put("bpe", "seed-%d.txt" % i, s.encode("latin-1") if "\xc3" in s else s.encode())
    # BTCAL1
    put("calib", "seed-full.btcal", btcal([("blk.0.attn_q.weight,blk.0.attn_k.weight", 4, True),
                                           ("blk.0.ffn_down.weight", 3, False)]))
    put("calib", "seed-diag.btcal", btcal([("blk.0.ffn_gate.weight,blk.0.ffn_up.weight", 8, False)]))
    # INI
    ex = os.path.join(HERE, "..", "..", "examples")
    for n in sorted(os.listdir(ex)):
        if n.endswith(".ini"):
            put("ini", "seed-" + n, open(os.path.join(ex, n), "rb").read())
    put("ini", "seed-min.ini", "[pipeline]\nthreads = 2\nbackend = cpu\n[input]\npath = in.gguf\nreader = gguf\n"
        "[quantize]\nmethod = none\n[output]\npath = out.gguf\ntype = tq1_0\nalignment = 64\n")


if __name__ == "__main__":
    main()
