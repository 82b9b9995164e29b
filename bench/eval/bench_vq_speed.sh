#!/usr/bin/env bash
# bench_vq_speed.sh - prompt processing (pp512) and generation (tg128) tokens/s of bt-small in bt's
# vq format beside bt's own TQ2_0 and F16 of the same model, in one run on the same machine
# (runs alternate vq / tq2_0 / f16, REPS times, the best of each kept), with the ratios. The vq
# files are written by `method = vptq` without calibration (the speed does not depend on it):
# vq4x8 (vector 4, 256 centroids: bt-small's 2-bit quality setting) and vq8x8r8 (vector 8, 256
# centroids + a 256-entry residual: 2 bits with two L1-sized codebooks). Prints JSON lines.
# usage: [REPS=3] bench/eval/bench_vq_speed.sh [BUILD_DIR] [THREADS]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
T=${2:-2}
REPS=${REPS:-3}
MODEL=$SRC/../shared/models/bt-small
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
conv() { # name, [quantize] body, type
  printf '[input]\npath = %s\n[quantize]\n%s\n[output]\npath = %s/%s.gguf\ntype = %s\nkeep_type = f16\n' \
    "$MODEL" "$2" "$TMP" "$1" "$3" > "$TMP/$1.ini"
  "$BUILD/bin/bt-pipeline" -q run "$TMP/$1.ini"
}
conv vq4x8 $'method = vptq\nvector_len = 4\ncentroids = 256\nkmeans_iters = 10' vq
conv vq8x8r8 $'method = vptq\nvector_len = 8\ncentroids = 256\nres_centroids = 256\nkmeans_iters = 10' vq
conv tq2_0 "method = absmean" tq2_0
conv f16 "method = none" tq2_0
KINDS="vq4x8 vq8x8r8 tq2_0 f16"
for k in $KINDS; do : > "$TMP/$k.jsonl"; done
for r in $(seq "$REPS"); do
  for k in $KINDS; do
    act=""; [ $k = tq2_0 ] && act="--q8"
    "$BUILD/bin/bt_bench_eval" "$TMP/$k.gguf" --threads "$T" --pp 512 --tg 128 --reps 1 $act | tail -1 >> "$TMP/$k.jsonl"
  done
done
python3 - "$T" "$TMP" $KINDS <<'PY'
import json, os, sys
T, tmp, kinds = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
best = {}
for k in kinds:
    rows = [json.loads(l) for l in open(f"{tmp}/{k}.jsonl") if l.strip()]
    best[k] = (max(r["pp_tps"] for r in rows), max(r["tg_tps"] for r in rows), len(rows),
               os.path.getsize(f"{tmp}/{k}.gguf"))
for k in kinds:
    pp, tg, n, size = best[k]
    out = {"model": "bt-small", "type": k, "threads": T, "runs": n, "file_mb": round(size / 1e6, 2),
           "pp512": round(pp, 1), "tg128": round(tg, 1)}
    for ref in ("tq2_0", "f16"):
        if ref != k:
            out[f"pp_ratio_{ref}"] = round(pp / best[ref][0], 3)
            out[f"tg_ratio_{ref}"] = round(tg / best[ref][1], 3)
    print(json.dumps(out))
PY
