#!/usr/bin/env bash
# compare_llama_cpp.sh - prompt processing (pp512) and generation (tg128) tokens/s of bt and
# llama.cpp on the same GGUF files of bt-small (TQ2_0 and F16, both written by bt), in one run
# on the same machine, with the ratio bt / llama.cpp. Prints JSON lines.
# llama.cpp comes from tests/interop/llama_cpp_interop.sh's build ($LLAMA_CPP_DIR).
# usage: bench/eval/compare_llama_cpp.sh [BUILD_DIR] [THREADS]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
T=${2:-2}
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
MODEL=$SRC/../shared/models/bt-small
[ -x "$LLAMA/build/bin/llama-bench" ] || { echo "llama-bench not found in $LLAMA/build/bin (run tests/interop/llama_cpp_interop.sh first)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for kind in tq2_0 f16; do
  if [ $kind = tq2_0 ]; then q="method = absmean"; else q="method = none"; fi
  printf '[input]\npath = %s\n[quantize]\n%s\n[output]\npath = %s/%s.gguf\ntype = tq2_0\nkeep_type = f16\n' \
    "$MODEL" "$q" "$TMP" "$kind" > "$TMP/$kind.ini"
  "$BUILD/bin/bt-pipeline" -q run "$TMP/$kind.ini"
done
for kind in tq2_0 f16; do
  f=$TMP/$kind.gguf
  act=""; [ $kind = tq2_0 ] && act="--q8"
  bt=$("$BUILD/bin/bt_bench_eval" "$f" --threads "$T" --pp 512 --tg 128 $act | tail -1)
  ll=$("$LLAMA/build/bin/llama-bench" -m "$f" -t "$T" -p 512 -n 128 -o json 2>/dev/null)
  python3 - "$kind" "$bt" "$ll" <<'PY'
import json, sys
kind, bt, ll = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
pp = next(r["avg_ts"] for r in ll if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in ll if r["n_gen"] > 0)
print(json.dumps({"model": "bt-small", "type": kind, "bt_pp512": round(bt["pp_tps"], 1), "llama_pp512": round(pp, 1),
                  "pp_ratio": round(bt["pp_tps"] / pp, 3), "bt_tg128": round(bt["tg_tps"], 1),
                  "llama_tg128": round(tg, 1), "tg_ratio": round(bt["tg_tps"] / tg, 3), "backend": bt.get("backend")}))
PY
done
