#!/usr/bin/env bash
# tokenizer_llama_cpp.sh - does bt's tokenizer from GGUF metadata give the same ids as llama.cpp's
# own (llama-tokenize) on the same GGUF files? Runs tests/tokenizer/test_tok_gguf_hf.py (which
# makes a vocabulary-only GGUF per pre-tokenizer family plus SentencePiece, and checks bt against
# HF tokenizers), then tokenizes each case's text with llama-tokenize and with
# `bt-pipeline tokenize`. llama.cpp comes from the llama-cpp-python sdist, built as
# llama_cpp_interop.sh does (only the llama-tokenize target is added here). Run by hand; its
# result is recorded in docs/formats.md.
#
# usage: tests/interop/tokenizer_llama_cpp.sh [BUILD_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
SHARED=$SRC/../shared
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
BT=$BUILD/bin/bt-pipeline

if [ ! -x "$LLAMA/build/bin/llama-tokenize" ]; then
  if [ ! -d "$LLAMA/build" ]; then
    echo "build llama.cpp first (tests/interop/llama_cpp_interop.sh does)" >&2
    exit 2
  fi
  cmake --build "$LLAMA/build" -j"${THREADS:-2}" --target llama-tokenize >&2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 "$SRC/tests/tokenizer/test_tok_gguf_hf.py" "$BT" "$SHARED" "$TMP" >&2
# and a whole model as bt writes it (bt-tiny, tokenizer from its tokenizer.json), on the eval text
mkdir -p "$TMP/tiny"
printf '[input]\npath = %s\n[quantize]\nmethod = none\n[output]\npath = bt-tiny.gguf\n' \
  "$SRC/models/bt-tiny" > "$TMP/tiny/cv.ini"
"$BT" -q run "$TMP/tiny/cv.ini"
mv "$TMP/tiny/bt-tiny.gguf" "$TMP/bt-tiny.gguf"
cp "$SHARED/data/eval_kjv.txt" "$TMP/text_bt-tiny.txt"

fails=0
for g in "$TMP"/*.gguf; do
  name=$(basename "$g" .gguf)
  case $name in
    unknown-pre) continue ;;
    bt-small) text=$TMP/text_mixed.txt ;;   # bt-small is compared text by text; take one
    spm) text=$TMP/text_llama-spm.txt ;;
    *) text=$TMP/text_$name.txt ;;          # all ten texts joined by <|sep|>
  esac
  want=$("$LLAMA/build/bin/llama-tokenize" -m "$g" -f "$text" --ids --log-disable --no-bos \
         --no-escape 2>/dev/null | tail -1 | tr -d '[],')
  got=$("$BT" tokenize --special --model "$g" "$text")
  n=$(echo "$got" | wc -w)
  if [ "$want" = "$got" ]; then
    echo "{\"case\": \"$name\", \"tokens\": $n, \"same_as_llama_cpp\": true}"
  else
    echo "{\"case\": \"$name\", \"tokens\": $n, \"same_as_llama_cpp\": false}"
    fails=$((fails + 1))
  fi
done
# llama.cpp refuses an unknown tokenizer.ggml.pre too
if "$LLAMA/build/bin/llama-tokenize" -m "$TMP/unknown-pre.gguf" -p x --log-disable >/dev/null 2>&1; then
  echo "llama.cpp accepted an unknown pre-tokenizer name" >&2
fi
exit $((fails > 0))
