# test_tok_oracle.py - compares bt-tokenize-test with an independent pure-Python byte-level BPE
# (the `regex` module for the split, naive lowest-rank merging) on random Unicode text.
# usage: test_tok_oracle.py TOOL MODEL_DIR TMP_DIR ; exits 77 (skip) without the regex module.
import json, os, random, subprocess, sys

try:
    import regex
except ImportError:
    print("python 'regex' module not installed: skipped")
    sys.exit(77)


def byte_map():
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    m, k = {}, 0
    for b in range(256):
        if b in keep:
            m[b] = chr(b)
        else:
            m[b] = chr(256 + k)
            k += 1
    return m


def main():
    tool, model, tmp = sys.argv[1:4]
    tj = json.load(open(os.path.join(model, "tokenizer.json"), encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    ranks = {}
    for i, m in enumerate(tj["model"]["merges"]):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        ranks.setdefault((a, b), i)
    pat = regex.compile(tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])
    bm = byte_map()

    def bpe(word):
        syms = [bm[b] for b in word.encode("utf-8")]
        while len(syms) > 1:
            best = min(range(len(syms) - 1), key=lambda i: (ranks.get((syms[i], syms[i + 1]), 1 << 30), i))
            if (syms[best], syms[best + 1]) not in ranks:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        return [vocab[s] for s in syms]

    def encode(text):
        return [i for w in pat.findall(text) for i in bpe(w)]

    rng = random.Random(1234)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789", " \t\n\r\v\f\u00a0\u2028\u3000\u200b\u0085\u1680\u2009",
        "'\"!?.,;:-()[]{}<>|/\\@#$%^&*_+=~`", "\u00e9\u00fc\u00df\u0301\u0308\u00c5",
        "\u4e2d\u6587\u65e5\u672c\u8a9e\ud55c\uad6d", "\u03b1\u03b2\u0393\u0416\u0436\u05d0\u0645",
        "\U0001F600\U0001F468\u200d\U0001F469\u2764\ufe0f", "\u0660\u0661\u00b2\u2163\u00bd",
    ]
    words = ["'s", "'S", "'ll", "'LL", "'Re", " the", " LORD", "\n\n", "  \n", " 1234567"]
    cases = []
    for _ in range(150):
        parts = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.2:
                parts.append(rng.choice(words))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        cases.append("".join(parts))
    bad = 0
    path = os.path.join(tmp, "oracle_case.txt")
    os.makedirs(tmp, exist_ok=True)
    for text in cases:
        with open(path, "wb") as f:
            f.write(text.encode("utf-8"))
        got = [int(x) for x in subprocess.check_output([tool, model, path]).split()]
        want = encode(text)
        if got != want:
            bad += 1
            if bad <= 3:
                k = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
                print("mismatch for %r: first at %d: got %s want %s" % (text, k, got[k:k + 5], want[k:k + 5]))
    print("%d cases, %d mismatches" % (len(cases), bad))
    return 1 if bad else 0


sys.exit(main())
