# test_tok_ggufpy.py - the tokenizer metadata bt makes from tokenizer.json must agree with what
# gguf-py's own HF readers (BpeVocab, SpecialVocab) extract: tokens, merges, bos/eos ids.
# usage: test_tok_ggufpy.py TOOL MODEL_DIR
import json, subprocess, sys
from pathlib import Path

import gguf.vocab as gv


def main():
    tool, model = sys.argv[1:3]
    kv = json.loads(subprocess.check_output([tool, "--dump-kvs", model]))
    bpe = gv.BpeVocab(Path(model))
    special = gv.SpecialVocab(Path(model), load_merges=True)
    fails = []
    toks = [t.decode("utf-8") if isinstance(t, bytes) else t for t, _, _ in bpe.all_tokens()]
    if kv["tokenizer.ggml.tokens"] != toks:
        fails.append("tokens differ")
    if kv["tokenizer.ggml.merges"] != list(special.merges):
        fails.append("merges differ")
    for name in ("bos", "eos"):
        if kv.get("tokenizer.ggml.%s_token_id" % name) != special.special_token_ids.get(name):
            fails.append("%s id differs" % name)
    if kv["tokenizer.ggml.model"] != bpe.tokenizer_model:
        fails.append("model differs")
    if len(kv["tokenizer.ggml.token_type"]) != len(toks):
        fails.append("token_type length")
    for f in fails:
        print("FAIL:", f)
    print("%d tokens, %d merges checked" % (len(toks), len(special.merges)))
    return 1 if fails else 0


sys.exit(main())
