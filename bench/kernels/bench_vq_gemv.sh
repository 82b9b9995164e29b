#!/usr/bin/env bash
# bench_vq_gemv.sh - batch-1 vq GEMV (bench_vq's gemv part, TQ2_0 in the same run) REPS times on
# a shared machine, alternating with a second plugin folder when one is given (e.g. a build of an
# older commit), with the load average before each run. Prints one JSON line per (plugins,
# format, hot/cold weights, shape, threads): the fastest of all runs, its codes per cycle, and its
# fraction of the read bandwidth measured in that run (of_read_bw) and of the best read bandwidth
# of all runs (of_best_read_bw). The raw runs go to OUT (default: a temporary file).
# usage: [REPS=3] [OUT=file.jsonl] bench/kernels/bench_vq_gemv.sh [BUILD_DIR] [THREADS] [OTHER_PLUGIN_DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
T=${2:-2}
OTHER=${3:-}
REPS=${REPS:-3}
OUT=${OUT:-$(mktemp)}
: > "$OUT"
for r in $(seq "$REPS"); do
  for dir in "$BUILD/lib/bt" $OTHER; do
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    json=$("$BUILD/bin/bench_vq" "$dir" 0.3 "$T" cpu-avx2 gemv)
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d["plugins"] = sys.argv[2]; d["loadavg"] = sys.argv[3]; print(json.dumps(d))' \
      "$json" "$dir" "$load" >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, sys
best, bw = {}, {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    for t, g in enumerate(d["read_gb_s"]):
        bw[t + 1] = max(bw.get(t + 1, 0), g)
    for r in d["results"]:
        key = (d["plugins"], r["fmt"], r["weights"], r["rows"], r["cols"], r["threads"])
        r = dict(r, loadavg=d["loadavg"], read_gb_s=d["read_gb_s"][r["threads"] - 1], core_ghz=d["core_ghz"])
        if key not in best or r["us"] < best[key]["us"]:
            best[key] = r
for (plugins, *_), r in sorted(best.items()):
    print(json.dumps(dict(plugins=plugins, **{k: r[k] for k in ("fmt", "weights", "rows", "cols", "threads", "us", "gweights_s",
          "gb_s", "read_gb_s", "of_read_bw", "core_ghz", "loadavg")},
          of_best_read_bw=round(r["gb_s"] / bw[r["threads"]], 3), codes_per_cycle=r.get("codes_per_cycle"),
          weights_per_cycle=r.get("weights_per_cycle"))))
PY
