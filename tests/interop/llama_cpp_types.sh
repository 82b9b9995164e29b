#!/usr/bin/env bash
# llama_cpp_types.sh - bt reads what llama.cpp writes: bt-small is converted to an F16 GGUF by bt,
# llama-quantize turns it into Q4_0, Q4_1, Q5_K, Q6_K, Q4_K_M and IQ4_XS files, and for each
#   1. every tensor bt decodes equals gguf-py's dequantization bit for bit (tests/gguf's dump
#      tool reads the file through bt's gguf reader),
#   2. `bt-pipeline eval --scoring llama` and `llama-perplexity` agree within 0.3 % on the same
#      chunks (the first $CHUNKS windows of $CTX tokens),
# and the Q6_K file is re-quantized to TQ2_0 by bt (absmean, lsq), which llama-perplexity and
# bt's eval then both run.
#
# llama.cpp comes from the llama-cpp-python source package as in llama_cpp_interop.sh (cached in
# $LLAMA_CPP_DIR, default ~/.cache/bt/llama.cpp; llama-quantize is built if missing). Not CI
# (llama.cpp, minutes); docs/benchmarks.md records its result. Prints one JSON line per file;
# exits 1 if any check fails.
#
# usage: tests/interop/llama_cpp_types.sh [BUILD_DIR] [MODEL_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
MODEL=$(cd "${2:-$SRC/../shared/models/bt-small}" && pwd)
TEXT=$SRC/../shared/data/eval_kjv.txt
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
CTX=${CTX:-512}
CHUNKS=${CHUNKS:-8}
THREADS=${THREADS:-2}
TOL=${TOL:-0.003}
BIN=$LLAMA/build/bin

if [ ! -x "$BIN/llama-perplexity" ]; then
  echo "llama.cpp not built in $LLAMA: run tests/interop/llama_cpp_interop.sh first" >&2
  exit 2
fi
if [ ! -x "$BIN/llama-quantize" ]; then
  cmake --build "$LLAMA/build" -j"$THREADS" --target llama-quantize >&2
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
READER=$(ls "$BUILD"/lib*/bt/libbt-reader-gguf.so | head -1)

# bt-small -> F16 GGUF (bt's writer: llama.* and tokenizer metadata, q/k rows in GGUF order)
cat > "$TMP/f16.ini" <<INI
[input]
path = $MODEL
[quantize]
method = none
[output]
path = $TMP/bt-small-f16.gguf
keep_type = f16
INI
"$BUILD/bin/bt-pipeline" -q run "$TMP/f16.ini"

status=0
# compare bt's decode of every tensor of $1 with gguf-py's; prints "types n_tensors"
same_as_gguf_py() {
  local f=$1 d=$TMP/dump.$(basename "$1")
  mkdir -p "$d"
  "$BUILD/bin/test_gguf" dump "$READER" "$f" "$d" > "$d/list.json"
  python3 - "$f" "$d" <<'PY'
import json, os, sys
import numpy as np
import gguf
path, d = sys.argv[1:3]
lst = {t["name"]: t for t in json.load(open(os.path.join(d, "list.json")))["tensors"]}
bad, types = [], {}
for t in gguf.GGUFReader(path).tensors:
    name = t.tensor_type.name
    types[name] = types.get(name, 0) + 1
    got = np.fromfile(os.path.join(d, t.name + ".f32"), np.float32)
    want = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
    if got.shape != want.shape or not np.array_equal(got.view(np.uint32), want.view(np.uint32)):
        bad.append(t.name)
print(json.dumps({"types": types, "tensors_differing": bad}))
sys.exit(1 if bad else 0)
PY
}

# llama-perplexity vs bt eval on the same chunks; prints a JSON line
ppl_pair() {
  local name=$1 f=$2 types=$3
  "$BIN/llama-perplexity" -m "$f" -f "$TEXT" -c "$CTX" --chunks "$CHUNKS" -t "$THREADS" \
    > "$TMP/$name.llama.log" 2>&1 || { tail -20 "$TMP/$name.llama.log" >&2; return 1; }
  local llama_ppl bt_ppl
  llama_ppl=$(grep -o 'Final estimate: PPL = [0-9.]*' "$TMP/$name.llama.log" | awk '{print $5}')
  "$BUILD/bin/bt-pipeline" -q eval --model "$f" --text "$TEXT" --ctx "$CTX" --scoring llama \
    --max-windows "$CHUNKS" --report "$TMP/$name.bt.json" --threads "$THREADS" || return 1
  bt_ppl=$(python3 -c "import json;print(json.load(open('$TMP/$name.bt.json'))['perplexity'])")
  python3 - "$name" "$llama_ppl" "$bt_ppl" "$TOL" "$types" "$CHUNKS" "$CTX" <<'PY'
import json, sys
l, b, tol = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
d = abs(b / l - 1)
print(json.dumps({"file": sys.argv[1], "chunks": int(sys.argv[6]), "ctx": int(sys.argv[7]),
                  "llama_cpp_perplexity": l, "bt_perplexity": round(b, 4), "rel_diff": round(d, 6),
                  "within_tol": d <= tol, "decode_vs_gguf_py": json.loads(sys.argv[5])}))
sys.exit(0 if d <= tol else 1)
PY
}

for q in Q4_0 Q4_1 Q5_K Q6_K Q4_K_M IQ4_XS; do
  f=$TMP/bt-small-$q.gguf
  "$BIN/llama-quantize" "$TMP/bt-small-f16.gguf" "$f" "$q" "$THREADS" > "$TMP/$q.quantize.log" 2>&1 \
    || { tail -20 "$TMP/$q.quantize.log" >&2; status=1; continue; }
  types=$(same_as_gguf_py "$f") || status=1
  ppl_pair "$q" "$f" "$types" || status=1
done

# Q6_K (llama.cpp's file) -> TQ2_0 by bt, then run by llama.cpp and bt
cat > "$TMP/tq2.ini" <<INI
[input]
path = $TMP/bt-small-Q6_K.gguf
[quantize]
method = absmean
scale = lsq
[output]
path = $TMP/bt-small-Q6_K-tq2_0.gguf
type = tq2_0
keep_type = f16
INI
if "$BUILD/bin/bt-pipeline" -q run "$TMP/tq2.ini"; then
  ppl_pair Q6_K-to-TQ2_0 "$TMP/bt-small-Q6_K-tq2_0.gguf" \
    "$(same_as_gguf_py "$TMP/bt-small-Q6_K-tq2_0.gguf")" || status=1
else
  echo '{"file": "Q6_K-to-TQ2_0", "error": "conversion failed"}'
  status=1
fi
exit $status
