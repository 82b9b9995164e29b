#!/usr/bin/env bash
# variants_llama_cpp.sh - does llama.cpp load bt's GGUF of every Llama-family variant fixture
# (tests/model/variants.py: Llama 2 MHA, Llama 3 GQA + llama3 rope, linear rope, tied + head_dim,
# Mistral, Qwen2 with biases, hidden 576 as TQ2_0 + q8_0 fallback, a packed BitNet b1.58 with
# silu as TQ2_0 under arch bitnet) and compute the same function?
# For each: bt converts the fixture, llama-perplexity and `bt-pipeline eval --scoring llama` score
# the same text with the same windows; the two perplexities must agree within 0.5 % (BitNet: bt
# quantizes activations per token as BitNet does, llama.cpp per 256 for TQ2_0). (Random
# weights: perplexities are in the thousands, and a wrong rope, bias or head layout moves them by
# far more than that.) Needs llama.cpp built as tests/interop/llama_cpp_interop.sh does; not in CI.
#
# usage: tests/interop/variants_llama_cpp.sh [BUILD_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
SHARED=$(cd "$SRC/../shared" && pwd)
TEXT=$SHARED/data/eval_kjv.txt
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
CTX=128
CHUNKS=8
[ -x "$LLAMA/build/bin/llama-perplexity" ] || { echo "no $LLAMA/build/bin/llama-perplexity (run llama_cpp_interop.sh once)" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
for v in llama2-mha llama3-gqa llama-linear llama-tied-headdim mistral qwen2 odd576 bitnet-silu; do
  SRC=$SRC python3 - "$TMP/$v" "$v" "$SHARED/models/bt-tiny/tokenizer.json" <<'PY'
import sys, os
sys.path.insert(0, os.path.join(os.environ["SRC"], "tests", "model"))
import variants, bitnet_fixture
if sys.argv[2] == "bitnet-silu":  # packed trits + weight_scale (bitlinear), silu: llama.cpp's bitnet graph
    bitnet_fixture.make(sys.argv[1], sys.argv[3], kind="packed", act="silu", linear_class="bitlinear")
else:
    variants.make(sys.argv[1], sys.argv[2], sys.argv[3])
PY
  case $v in
    odd576) q="method = absmean"; keep="keep = *embed_tokens* lm_head" ;;
    bitnet-*) q="method = absmean"; keep="keep = *embed_tokens*" ;;
    *) q="method = none"; keep="" ;;
  esac
  printf '[input]\npath = %s\n[quantize]\n%s\n%s\n[output]\npath = %s\ntype = tq2_0\nkeep_type = f16\n' \
    "$TMP/$v" "$q" "$keep" "$TMP/$v.gguf" > "$TMP/$v.ini"
  "$BUILD/bin/bt-pipeline" -q run "$TMP/$v.ini"
  "$LLAMA/build/bin/llama-perplexity" -m "$TMP/$v.gguf" -f "$TEXT" -c $CTX --chunks $CHUNKS -t 2 \
    > "$TMP/$v.llama.log" 2>&1 || { tail -20 "$TMP/$v.llama.log" >&2; fail=1; continue; }
  lp=$(grep -o 'Final estimate: PPL = [0-9.]*' "$TMP/$v.llama.log" | awk '{print $5}')
  "$BUILD/bin/bt-pipeline" -q eval --model "$TMP/$v.gguf" --text "$TEXT" --ctx $CTX --scoring llama \
    --tokenize whole --max-windows $CHUNKS --report "$TMP/$v.bt.json" --threads 2
  python3 - "$v" "$lp" "$TMP/$v.bt.json" <<'PY' || fail=1
import json, sys
v, lp, rep = sys.argv[1], float(sys.argv[2]), json.load(open(sys.argv[3]))
bp = rep["perplexity"]
rel = abs(bp / lp - 1)
print(json.dumps({"variant": v, "llama_cpp_ppl": lp, "bt_ppl": bp, "rel_diff": round(rel, 5)}))
sys.exit(0 if rel <= 0.005 else 1)
PY
done
exit $fail
