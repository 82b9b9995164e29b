# test_tok_gguf_hf.py - bt's tokenizer built from GGUF metadata alone (tokenizer.ggml.*) must
# give the same ids as the Hugging Face `tokenizers` library on the equivalent tokenizer.json.
# For each case this script makes a tokenizer.json (bt-small's real one, or a small BPE trained
# here on calib.txt with a model family's published pre-tokenizer), maps it to a GGUF that holds
# only tokenizer.ggml.* keys (our own mapping, as llama.cpp's converter names them: no
# bt.tokenizer.* keys, so bt must take the split rules from tokenizer.ggml.pre), then compares
# `bt-pipeline tokenize --special` on the GGUF with Tokenizer.encode on the json, text by text.
# With DUMP_TOOL (bt-tokenize-test) it also checks that bt's own tokenizer.json -> GGUF mapping
# names each family's pre-tokenizer (tokenizer.ggml.pre) as the table does.
# usage: test_tok_gguf_hf.py BT_PIPELINE SHARED_DIR TMP_DIR [DUMP_TOOL] ; exits 77 without
# `tokenizers`.
import json, os, subprocess, sys

try:
    from tokenizers import Tokenizer, Regex, models, normalizers, pre_tokenizers, trainers
except ImportError:
    print("python 'tokenizers' module not installed (scripts/setup.sh installs it): skipped")
    sys.exit(77)
import gguf

# ---- the published pre-tokenizer rules of each family (tokenizer.json spelling) ------------
GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
TEKKEN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
          r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CONTR = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
GPT4O = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+" + CONTR +
         r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*" + CONTR +
         r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
DS_CJK = r"[\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+"
DS_LLM = [r"[\r\n]", r"\s?[\p{Lu}\p{Ll}\p{Lt}]+",
          r"\s?[\x{21}-\x{2F}\x{3A}-\x{7E}\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}"
          r"\x{3000}-\x{3002}]+", r"\s+$", DS_CJK, r"\p{N}+"]
DS_CODER = [r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", DS_CJK, r"\p{N}"]
DS_V3 = [r"\p{N}{1,3}", r"[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+",
         r"[!" + '"' + r"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?"
         r"[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"]


def splits(*res):
    return [pre_tokenizers.Split(Regex(r), "isolated") for r in res]


def bl(use_regex):
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)


# name -> (tokenizer.ggml.pre, pre-tokenizer, ignore_merges); ignore_merges as the models ship it
FAMILIES = {
    "gpt-2": (bl(True), False),
    "llama-bpe": (pre_tokenizers.Sequence(splits(LLAMA3) + [bl(False)]), True),
    "qwen2": (pre_tokenizers.Sequence(splits(QWEN2) + [bl(False)]), False),
    "tekken": (pre_tokenizers.Sequence(splits(TEKKEN) + [bl(False)]), True),
    "gpt-4o": (pre_tokenizers.Sequence(splits(GPT4O) + [bl(False)]), False),
    "starcoder": (pre_tokenizers.Sequence([pre_tokenizers.Digits(True), bl(True)]), False),
    "smollm": (pre_tokenizers.Sequence([pre_tokenizers.Digits(True), bl(True)]), False),
    "refact": (pre_tokenizers.Sequence([pre_tokenizers.Digits(True), bl(True)]), False),
    "falcon": (pre_tokenizers.Sequence([pre_tokenizers.Punctuation("contiguous"), bl(True),
                                        pre_tokenizers.Digits(False)] + splits("[0-9][0-9][0-9]")),
               False),
    "deepseek-llm": (pre_tokenizers.Sequence(splits(*DS_LLM) + [bl(False)]), False),
    "deepseek-coder": (pre_tokenizers.Sequence(splits(*DS_CODER) + [bl(False)]), False),
    "deepseek-v3": (pre_tokenizers.Sequence(splits(*DS_V3) + [bl(False)]), False),
}
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|pad|>", "<|sep|>"]

TEXTS = [
    ("ascii", "Hello world. The quick brown fox jumps over the lazy dog!"),
    ("unicode", "Caf\u00e9 na\u00efve \u00fcber Stra\u00dfe, \u00c5ngstr\u00f6m \u0394\u03b5\u03bb\u03c4\u03b1 "
                "\u0416\u0443\u043a \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627"),
    ("digits", "1 12 123 1234 12345 1234567890 3.14159 2024-11-29 x86_64 v1.2.3"),
    ("whitespace", "a  b   c\t\td\n\ne \n  \n\tf   \r\n g     "),
    ("contractions", "I'm sure it's fine, you'll see; they've said we'd go. DON'T SHOUT, It'S OK"),
    ("code", "def f(x):\n    return [i**2 for i in range(x) if i % 3 == 0]  # sq\n"
             "int main(void) { printf(\"%d\\n\", a->b[0] >> 2); }\n"),
    ("emoji", "ok \U0001F600\U0001F44D\U0001F3FD \u2764\ufe0f \U0001F468\u200d\U0001F469\u200d\U0001F467 done"),
    ("cjk", "\u4e2d\u6587\u6587\u672c\u6d4b\u8bd5\u3002\u65e5\u672c\u8a9e\u306e\u3072\u3089\u304c\u306a"
            "\u3068\u30ab\u30bf\u30ab\u30ca\u3002\ud55c\uad6d\uc5b4 \ud14c\uc2a4\ud2b8."),
    ("mixed", "In 1611, the KJV's text: \u201cIn the beginning\u201d \u2014 \u00a7 3\u00bd\u2026 CamelCaseWord "
              "snake_case HTTPServer"),
    ("special", "<|begin_of_text|>Hi there<|end_of_text|> and <|pad|><|pad|> x"),
]
def corpus(shared):
    with open(os.path.join(shared, "data", "calib.txt"), encoding="utf-8") as f:
        text = f.read(120000)
    lines = text.splitlines()
    extra = [t for _, t in TEXTS[:-1]] * 3  # so the vocabularies hold some of the rarer pieces
    return lines + extra


def train_bytelevel(pre, ignore_merges, data):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre
    tr = trainers.BpeTrainer(vocab_size=1200, special_tokens=SPECIALS, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(data, tr)
    return tok


def train_spm(data):
    """SentencePiece-style BPE as Llama 2's tokenizer.json: byte fallback, <0xNN> tokens,
    Prepend + Replace normalizer, no pre-tokenizer (trained on Metaspace words)."""
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tr = trainers.BpeTrainer(vocab_size=900, special_tokens=["<unk>", "<s>", "</s>", "<sep>"],
                             limit_alphabet=120, show_progress=False)
    tok.train_from_iterator(data, tr)
    j = json.loads(tok.to_str())
    old = j["model"]["vocab"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<sep>": 3}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in sorted(old.items(), key=lambda kv: kv[1]):
        if t not in vocab:
            vocab[t] = len(vocab)
    j["model"]["vocab"] = vocab
    j["added_tokens"] = [dict(id=i, content=s, single_word=False, lstrip=False, rstrip=False,
                              normalized=False, special=True)
                         for i, s in enumerate(["<unk>", "<s>", "</s>", "<sep>"])]
    j["pre_tokenizer"] = None
    j["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    j["decoder"] = None
    j["post_processor"] = None
    return Tokenizer.from_str(json.dumps(j))


def merges_of(j):
    return [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]


def write_gguf(path, tok, pre, spm, bos, eos, add_bos):
    """tokenizer.json -> tokenizer.ggml.* (our mapping of the converter's rules)"""
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    added = {a["id"]: a for a in j["added_tokens"]}
    n = max(list(vocab.values()) + list(added)) + 1
    toks, types = [None] * n, [1] * n
    for t, i in vocab.items():
        toks[i] = t
    for i, a in added.items():
        toks[i] = a["content"]
        types[i] = 3 if a["special"] else 4
    merges = merges_of(j)
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("llama" if spm else "gpt2")
    w.add_tokenizer_pre(pre)
    if spm:
        # SentencePiece scores: a merged piece ranks by its merge, lower ranks score higher;
        # the alphabet comes after all merges; bytes and specials score 0
        rank = {m.replace(" ", "", 1) if m.count(" ") == 1 else None: r for r, m in enumerate(merges)}
        scores = [0.0] * n
        for i, t in enumerate(toks):
            if types[i] == 1 and t.startswith("<0x") and len(t) == 6:
                types[i] = 6
            elif types[i] == 1:
                scores[i] = -float(rank[t] + 1) if t in rank else -float(len(merges) + 1 + i)
        if j["model"].get("unk_token") in vocab:
            types[vocab[j["model"]["unk_token"]]] = 2
        w.add_token_scores(scores)
        w.add_add_space_prefix(True)
        w.add_unk_token_id(vocab["<unk>"])
    w.add_token_list(toks)
    w.add_token_types(types)
    if not spm:  # (SentencePiece: scores only, as the converter writes a tokenizer.model)
        w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(add_bos)
    w.add_add_eos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bt_ids(tool, model, textfile):
    p = subprocess.run([tool, "tokenize", "--special", "--model", model, textfile],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "error: " + p.stderr.strip()
    return [int(x) for x in p.stdout.split()]


# the name bt gives a family's tokenizer.json (the first of a table row with the same rules)
CANONICAL = {"smollm": "starcoder", "refact": "starcoder"}


def check_mapping(dump, folder, pre, model, fails):
    p = subprocess.run([dump, "--dump-kvs", folder], capture_output=True, text=True)
    if p.returncode:
        fails.append("%s: --dump-kvs failed: %s" % (folder, p.stderr.strip()))
        return
    kv = json.loads(p.stdout)
    if kv.get("tokenizer.ggml.pre") != pre or kv.get("tokenizer.ggml.model") != model:
        fails.append("%s: tokenizer.json mapped to %s/%s, expected %s/%s" % (
            folder, kv.get("tokenizer.ggml.model"), kv.get("tokenizer.ggml.pre"), model, pre))


def cut(ids, sid):
    parts = [[]]
    for i in ids:
        if i == sid:
            parts.append([])
        else:
            parts[-1].append(i)
    return parts


def compare(tool, tmp, name, tok, gguf_path, texts, fails, sep=None):
    """all texts in one call when sep (a special token) separates them: both sides split at
    special tokens first, so each text is still encoded on its own"""
    groups = [texts] if sep else [[t] for t in texts]
    for group in groups:
        joined = sep.join(t for _, t in group) if sep else group[0][1]
        tf = os.path.join(tmp, "text_%s.txt" % (name if sep else group[0][0]))
        with open(tf, "wb") as f:
            f.write(joined.encode("utf-8"))
        got = bt_ids(tool, gguf_path, tf)
        if isinstance(got, str):
            fails.append("%s: %s" % (name, got))
            continue
        want = tok.encode(joined, add_special_tokens=False).ids
        if sep:
            sid = tok.token_to_id(sep)
            got_p, want_p = cut(got, sid), cut(want, sid)
            if len(got_p) != len(group) or len(want_p) != len(group):
                fails.append("%s: %d/%d pieces for %d texts" % (name, len(got_p), len(want_p), len(group)))
                continue
        else:
            got_p, want_p = [got], [want]
        for (key, _), g, w in zip(group, got_p, want_p):
            if g != w:
                k = next((i for i, (a, b) in enumerate(zip(g, w)) if a != b), min(len(g), len(w)))
                fails.append("%s/%s: first difference at %d: bt %s hf %s (%r)" % (
                    name, key, k, g[k:k + 4], w[k:k + 4],
                    [tok.id_to_token(i) for i in w[max(0, k - 1):k + 3]]))
    return len(texts)


def main():
    tool, shared, tmp = sys.argv[1:4]
    dump = sys.argv[4] if len(sys.argv) > 4 else None
    os.makedirs(tmp, exist_ok=True)
    fails, total = [], 0
    data = corpus(shared)

    # bt-small's own tokenizer.json (Llama-3 rules, 8192 tokens)
    small = os.path.join(shared, "models", "bt-small", "tokenizer.json")
    tok = Tokenizer.from_file(small)
    path = os.path.join(tmp, "bt-small.gguf")
    write_gguf(path, tok, "llama-bpe", False, 0, 1, True)
    total += compare(tool, tmp, "bt-small", tok, path, TEXTS, fails)

    for name, (pre, ignore_merges) in FAMILIES.items():
        tok = train_bytelevel(pre, ignore_merges, data)
        os.makedirs(os.path.join(tmp, name), exist_ok=True)
        tok.save(os.path.join(tmp, name, "tokenizer.json"))
        if dump:
            check_mapping(dump, os.path.join(tmp, name), CANONICAL.get(name, name), "gpt2", fails)
        path = os.path.join(tmp, "%s.gguf" % name)
        write_gguf(path, tok, name, False, 0, 1, name in ("llama-bpe", "tekken"))
        total += compare(tool, tmp, name, tok, path, TEXTS, fails, "<|sep|>")

    tok = train_spm(data)
    os.makedirs(os.path.join(tmp, "spm"), exist_ok=True)
    tok.save(os.path.join(tmp, "spm", "tokenizer.json"))
    if dump:
        check_mapping(dump, os.path.join(tmp, "spm"), "default", "llama", fails)
    path = os.path.join(tmp, "spm.gguf")
    write_gguf(path, tok, "default", True, 1, 2, True)
    spm_texts = [(k, t.replace("<|begin_of_text|>", "<s>").replace("<|end_of_text|>", "</s>")
                  .replace("<|pad|>", "</s>")) for k, t in TEXTS]
    total += compare(tool, tmp, "llama-spm", tok, path, spm_texts, fails, "<sep>")

    # an unknown pre-tokenizer name is an error naming it
    path = os.path.join(tmp, "unknown-pre.gguf")
    write_gguf(path, Tokenizer.from_file(small), "no-such-pre", False, 0, 1, True)
    got = bt_ids(tool, path, os.path.join(tmp, "text_ascii.txt"))  # written by the bt-small case
    if not (isinstance(got, str) and "no-such-pre" in got and "llama-bpe" in got):
        fails.append("unknown pre-tokenizer: expected an error naming it, got %r" % (got,))

    for f in fails:
        print("FAIL:", f)
    print("%d texts compared with tokenizers %s, %d failures" % (total, __import__("tokenizers").__version__, len(fails)))
    return 1 if fails else 0


sys.exit(main())
