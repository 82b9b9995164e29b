#!/usr/bin/env bash
# llama_cpp_interop.sh - does llama.cpp load and evaluate bt's TQ2_0 GGUF, and does its perplexity
# agree with bt's own eval of the same file (same text, same windows)?
#
# llama.cpp is built from the llama-cpp-python source package on PyPI (vendor/llama.cpp), once,
# into $LLAMA_CPP_DIR (default ~/.cache/bt/llama.cpp). Too slow for CI (~15 min on 2 cores), so
# it is run by hand; docs/benchmarks.md records its result. Checks a plain and a rotated
# ([quantize] rotate = hadamard) conversion; prints one JSON line for each; exits 1 if the two
# perplexities of either differ by more than 1 %.
#
# usage: tests/interop/llama_cpp_interop.sh [BUILD_DIR] [MODEL_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
MODEL=$(cd "${2:-$SRC/../shared/models/bt-small}" && pwd) # absolute: INI paths resolve against the INI
TEXT=$SRC/../shared/data/eval_kjv.txt
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
CTX=${CTX:-512}
THREADS=${THREADS:-2}

if [ ! -x "$LLAMA/build/bin/llama-perplexity" ]; then
  mkdir -p "$LLAMA.dl"
  python3 -m pip download --no-deps --no-binary :all: llama-cpp-python -d "$LLAMA.dl" >&2
  tar xzf "$LLAMA.dl"/llama_cpp_python-*.tar.gz -C "$LLAMA.dl"
  rm -rf "$LLAMA" && mv "$LLAMA.dl"/llama_cpp_python-*/vendor/llama.cpp "$LLAMA"
  cmake -S "$LLAMA" -B "$LLAMA/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >&2
  cmake --build "$LLAMA/build" -j"$THREADS" --target llama-perplexity llama-bench >&2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# convert with [quantize] lines $2 into $TMP/$1.gguf, run llama.cpp and bt on it; prints a JSON
# line, returns 1 if the two perplexities differ by more than 1 %
check() {
  local name=$1 extra=$2
  cat > "$TMP/$name.ini" <<INI
[input]
path = $MODEL
[quantize]
method = absmean
scale = lsq
$extra
[output]
path = $TMP/$name.gguf
type = tq2_0
keep_type = f16
INI
  "$BUILD/bin/bt-pipeline" -q run "$TMP/$name.ini" || return 1 # (set -e is off inside `check || ...`)

  "$LLAMA/build/bin/llama-perplexity" -m "$TMP/$name.gguf" -f "$TEXT" -c "$CTX" -t "$THREADS" \
    > "$TMP/$name.llama.log" 2>&1 || { cat "$TMP/$name.llama.log" >&2; return 1; }
  local llama_ppl bt_ppl
  llama_ppl=$(grep -o 'Final estimate: PPL = [0-9.]*' "$TMP/$name.llama.log" | awk '{print $5}')
  "$BUILD/bin/bt-pipeline" -q eval --model "$TMP/$name.gguf" --text "$TEXT" --ctx "$CTX" \
    --scoring llama --report "$TMP/$name.bt.json" --threads "$THREADS" || return 1
  bt_ppl=$(python3 -c "import json;print(json.load(open('$TMP/$name.bt.json'))['perplexity'])")
  python3 - "$name" "$llama_ppl" "$bt_ppl" <<'PY'
import json, sys
l, b = float(sys.argv[2]), float(sys.argv[3])
d = abs(b / l - 1)
print(json.dumps({"model": sys.argv[1], "llama_cpp_perplexity": l, "bt_perplexity": b, "rel_diff": round(d, 5), "within_1pct": d <= 0.01}))
sys.exit(0 if d <= 0.01 else 1)
PY
}

status=0
check model-tq2_0 "" || status=1
# [quantize] rotate: the rotation is folded into the weights, so llama.cpp runs it as a plain
# Llama model (norm weights of ones; a tied model gets its own output.weight)
check model-tq2_0-rotated "rotate = hadamard" || status=1
exit $status
