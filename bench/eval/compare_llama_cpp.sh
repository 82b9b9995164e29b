#!/usr/bin/env bash
# compare_llama_cpp.sh - prompt processing (pp512) and generation (tg128) tokens/s of bt and
# llama.cpp on the same GGUF files of bt-small (TQ2_0, F16 and BF16, all written by bt), in one
# run on the same machine, with the ratio bt / llama.cpp; with PREV_BUILD set (a build folder of
# the previous main), also that build's bt on the same files and the ratio bt / previous.
# Runs alternate (bt, previous, llama.cpp) REPS times; the best of each is kept. Prints JSON lines.
# llama.cpp comes from tests/interop/llama_cpp_interop.sh's build ($LLAMA_CPP_DIR).
# usage: [PREV_BUILD=DIR] [REPS=3] bench/eval/compare_llama_cpp.sh [BUILD_DIR] [THREADS]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
T=${2:-2}
REPS=${REPS:-3}
PREV=${PREV_BUILD:-}
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
MODEL=$SRC/../shared/models/bt-small
[ -x "$LLAMA/build/bin/llama-bench" ] || { echo "llama-bench not found in $LLAMA/build/bin (run tests/interop/llama_cpp_interop.sh first)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for kind in tq2_0 f16 bf16; do
  case $kind in
    tq2_0) q="method = absmean"; keep=f16 ;;
    f16) q="method = none"; keep=f16 ;;
    bf16) q="method = none"; keep=bf16 ;;
  esac
  printf '[input]\npath = %s\n[quantize]\n%s\n[output]\npath = %s/%s.gguf\ntype = tq2_0\nkeep_type = %s\n' \
    "$MODEL" "$q" "$TMP" "$kind" "$keep" > "$TMP/$kind.ini"
  "$BUILD/bin/bt-pipeline" -q run "$TMP/$kind.ini"
done
for kind in tq2_0 f16 bf16; do
  f=$TMP/$kind.gguf
  act=""; [ $kind = tq2_0 ] && act="--q8"
  : > "$TMP/bt.jsonl"; : > "$TMP/prev.jsonl"; : > "$TMP/ll.jsonl"
  for r in $(seq "$REPS"); do
    "$BUILD/bin/bt_bench_eval" "$f" --threads "$T" --pp 512 --tg 128 --reps 1 $act | tail -1 >> "$TMP/bt.jsonl"
    [ -n "$PREV" ] && "$PREV/bin/bt_bench_eval" "$f" --threads "$T" --pp 512 --tg 128 --reps 1 $act | tail -1 >> "$TMP/prev.jsonl"
    "$LLAMA/build/bin/llama-bench" -m "$f" -t "$T" -p 512 -n 128 -r 1 -o jsonl 2>/dev/null >> "$TMP/ll.jsonl"
  done
  python3 - "$kind" "$T" "$TMP" <<'PY'
import json, sys
kind, T, tmp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rows(name):
    return [json.loads(l) for l in open(f"{tmp}/{name}.jsonl") if l.strip()]
bt, prev, ll = rows("bt"), rows("prev"), rows("ll")
out = {"model": "bt-small", "type": kind, "threads": T, "runs": len(bt)}
out["bt_pp512"] = max(r["pp_tps"] for r in bt); out["bt_tg128"] = max(r["tg_tps"] for r in bt)
out["llama_pp512"] = max(r["avg_ts"] for r in ll if r["n_prompt"] > 0)
out["llama_tg128"] = max(r["avg_ts"] for r in ll if r["n_gen"] > 0)
out["pp_ratio_llama"] = out["bt_pp512"] / out["llama_pp512"]; out["tg_ratio_llama"] = out["bt_tg128"] / out["llama_tg128"]
if prev:
    out["prev_pp512"] = max(r["pp_tps"] for r in prev); out["prev_tg128"] = max(r["tg_tps"] for r in prev)
    out["pp_ratio_prev"] = out["bt_pp512"] / out["prev_pp512"]; out["tg_ratio_prev"] = out["bt_tg128"] / out["prev_tg128"]
print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}))
PY
done
