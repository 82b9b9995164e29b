#!/usr/bin/env bash
# bench_under_load.sh - bt-small TQ2_0 pp512 / tg128 at 2 threads, bt and llama.cpp on the same
# file in the same run, quiet and with one core kept busy by another process (`yes > /dev/null`);
# runs alternate, the best of REPS is kept. Prints JSON lines with the ratios bt/llama.cpp and
# loaded/quiet. bt runs twice in each round: as it is, and with BT_POOL_ADAPT=0 (every short job
# on the pool, the choice of caller alone turned off: the pool before that change). llama.cpp from tests/interop/llama_cpp_interop.sh's build ($LLAMA_CPP_DIR).
# usage: [REPS=3] bench/eval/bench_under_load.sh [BUILD_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
REPS=${REPS:-3}
LLAMA=${LLAMA_CPP_DIR:-$HOME/.cache/bt/llama.cpp}
[ -x "$LLAMA/build/bin/llama-bench" ] || { echo "llama-bench not found in $LLAMA/build/bin" >&2; exit 1; }
TMP=$(mktemp -d)
HOG=""
trap '[ -n "$HOG" ] && kill $HOG 2>/dev/null; rm -rf "$TMP"' EXIT
printf '[input]\npath = %s\n[quantize]\nmethod = absmean\n[output]\npath = %s/tq2_0.gguf\ntype = tq2_0\nkeep_type = f16\n' \
  "$SRC/../shared/models/bt-small" "$TMP" > "$TMP/c.ini"
"$BUILD/bin/bt-pipeline" -q run "$TMP/c.ini"
for load in quiet busy; do
  if [ $load = busy ]; then yes > /dev/null & HOG=$!; sleep 0.5; fi
  : > "$TMP/bt.$load"; : > "$TMP/na.$load"; : > "$TMP/ll.$load"
  for r in $(seq "$REPS"); do
    "$BUILD/bin/bt_bench_eval" "$TMP/tq2_0.gguf" --threads 2 --pp 512 --tg 128 --reps 1 --q8 | tail -1 >> "$TMP/bt.$load"
    BT_POOL_ADAPT=0 "$BUILD/bin/bt_bench_eval" "$TMP/tq2_0.gguf" --threads 2 --pp 512 --tg 128 --reps 1 --q8 | tail -1 >> "$TMP/na.$load"
    "$LLAMA/build/bin/llama-bench" -m "$TMP/tq2_0.gguf" -t 2 -p 512 -n 128 -r 1 -o jsonl 2>/dev/null >> "$TMP/ll.$load"
  done
  if [ -n "$HOG" ]; then kill $HOG; HOG=""; fi
done
python3 - "$TMP" <<'PY'
import json, sys
tmp = sys.argv[1]
res = {}
for load in ("quiet", "busy"):
    bt = [json.loads(l) for l in open(f"{tmp}/bt.{load}") if l.strip()]
    na = [json.loads(l) for l in open(f"{tmp}/na.{load}") if l.strip()]
    ll = [json.loads(l) for l in open(f"{tmp}/ll.{load}") if l.strip()]
    res[load] = {"bt_pp512": max(r["pp_tps"] for r in bt), "bt_tg128": max(r["tg_tps"] for r in bt),
                 "bt_noadapt_pp512": max(r["pp_tps"] for r in na), "bt_noadapt_tg128": max(r["tg_tps"] for r in na),
                 "llama_pp512": max(r["avg_ts"] for r in ll if r["n_prompt"] > 0),
                 "llama_tg128": max(r["avg_ts"] for r in ll if r["n_gen"] > 0)}
for load, r in res.items():
    out = {"model": "bt-small", "type": "tq2_0", "threads": 2, "load": load, **{k: round(v, 1) for k, v in r.items()},
           "pp_ratio_llama": round(r["bt_pp512"] / r["llama_pp512"], 3), "tg_ratio_llama": round(r["bt_tg128"] / r["llama_tg128"], 3)}
    if load == "busy":
        out["bt_pp_of_quiet"] = round(r["bt_pp512"] / res["quiet"]["bt_pp512"], 3)
        out["bt_tg_of_quiet"] = round(r["bt_tg128"] / res["quiet"]["bt_tg128"], 3)
        out["bt_noadapt_pp_of_quiet"] = round(r["bt_noadapt_pp512"] / res["quiet"]["bt_noadapt_pp512"], 3)
        out["bt_noadapt_tg_of_quiet"] = round(r["bt_noadapt_tg128"] / res["quiet"]["bt_noadapt_tg128"], 3)
    print(json.dumps(out))
PY
