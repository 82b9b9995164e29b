#!/usr/bin/env bash
# ci_arm64.sh - the emulated AArch64 part of CI: cross-build bt with Debian's aarch64 cross
# compiler against the arm64 -dev packages (multiarch; installed here when missing), then run
# under qemu-user:
#   1. the backend conformance harness on cpu-neon (every kernel against the scalar reference
#      built for aarch64), on a CPU with dotprod (-cpu max: the sdot kernels, every op) and on
#      one without (-cpu cortex-a72: the plain NEON kernels, chosen at run time from
#      HWCAP_ASIMDDP; the matmul cases, the only ones whose kernels differ);
#   2. bt-tiny end to end: convert to TQ2_0 (on both) and 2-plane MTQ (on x86), eval 3 windows
#      of 64 tokens with int8 activations on cpu-neon; each perplexity must equal the x86
#      build's (scalar `cpu` backend) within 1e-4 relative.
# usage: scripts/ci_arm64.sh [X86_BUILD_DIR]   (default build; it must hold bt-pipeline)
# BT_ARM64_BUILD: the cross build folder (default build-arm64); BT_ARM64_PARTS: some of
# "setup build conformance e2e" (default all); BT_ARM64_X86ONLY=1: e2e on x86 only (a dry run
# of the script's e2e steps). Prints each part's time.
set -euo pipefail
cd "$(dirname "$0")/.."
X86=${1:-build}
B=${BT_ARM64_BUILD:-build-arm64}
PARTS=${BT_ARM64_PARTS:-all}
SHARED=$(cd "${BT_SHARED:-../shared}" && pwd)
start=$(date +%s)
part() {
    local name=$1 t0
    shift
    t0=$(date +%s)
    echo "[arm64] $name: $*"
    "$@"
    echo "[arm64] $name: $(( $(date +%s) - t0 )) s"
}

# ---- tools: cross compiler, arm64 libraries (multiarch), qemu-user ---------------------------
setup() {
    local pkgs=(gcc-aarch64-linux-gnu qemu-user libinih-dev:arm64 libzstd-dev:arm64
                libjson-c-dev:arm64 libpcre2-dev:arm64 libopenblas-dev:arm64 liblapacke-dev:arm64
                libssl-dev:arm64)
    local missing=() SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if ((${#missing[@]})); then
        dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

build() {
    cmake -S . -B "$B" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64.cmake >/dev/null
    # the executables and every plugin (not the unit tests: they run natively in the x86 parts)
    local targets
    targets=$(cmake --build "$B" --target help | sed -n 's/^\.\.\. \(bt-\(reader\|writer\|quantizer\|backend\|format\)-[a-z0-9-]*\).*/\1/p')
    # shellcheck disable=SC2086
    cmake --build "$B" -j2 --target bt-pipeline test_backend_ops $targets
    file "$B/lib/bt/libbt-backend-cpu-neon.so" | grep -q "ARM aarch64" ||
        { echo "[arm64] libbt-backend-cpu-neon.so is not an aarch64 module"; return 1; }
}

# OpenBLAS's worker threads busy-wait; emulated, they starve everything else (a plain
# `bt-pipeline --version` did not finish in 10 minutes with them): one thread under qemu
# bt's own pool spins briefly too: emulated runs use one thread (-t 1 / --threads 1; with 2 a
# conformance run printed nothing in 7 CPU-minutes, with 1 it passes in about 3 minutes)
QEMU=(env OPENBLAS_NUM_THREADS=1 qemu-aarch64 -L /usr/aarch64-linux-gnu)

# the harness on cpu-neon under one emulated CPU; $2: the kernel table open() must have chosen;
# the rest: more harness arguments
conformance() {
    local cpu=$1 isa=$2 log="$B/conformance-$1.log"
    shift 2
    if ! "${QEMU[@]}" -cpu "$cpu" "$B/bin/test_backend_ops" "$B/lib/bt" --backend cpu-neon -t 1 --quick "$@" \
        >"$log" 2>&1; then
        grep -E "FAIL|skipped" "$log" | head -40
        echo "[arm64] conformance on -cpu $cpu FAILED (log: $log)"
        return 1
    fi
    grep -q "under test: .*, $isa kernels)" "$log" ||
        { grep "under test" "$log"; echo "[arm64] -cpu $cpu: expected kernels '$isa'"; return 1; }
    echo "[arm64] -cpu $cpu ($isa): $(grep -c ' PASS$' "$log") groups passed, $(tail -1 "$log")"
}

# perplexity in a report JSON
ppl_of() { python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["perplexity"]))' "$1"; }

# bt-pipeline $1 converts bt-tiny (method $3, type $4, more [quantize] keys $5) into $2/model.gguf
convert() {
    local exe=$1 dir=$2 method=$3 type=$4 extra=$5
    mkdir -p "$dir"
    extra=${extra// /$'\n'} # key=value words, one per line
    cat >"$dir/convert.ini" <<EOF
[pipeline]
threads = 1
[input]
path = $SHARED/models/bt-tiny
[quantize]
method = $method
$extra
[output]
path = $dir/model.gguf
type = $type
EOF
    $exe run "$dir/convert.ini" >"$dir/convert.log" 2>&1 ||
        { cat "$dir/convert.log"; echo "[arm64] convert failed ($dir)"; return 1; }
}

# bt-pipeline $1 evaluates model $2 on backend $3 (3 windows of 64 tokens, int8 activations;
# emulated floating point is slow: ~60 CPU s per 384 tokens of bt-tiny)
# into report $4
evaluate() {
    local exe=$1 model=$2 backend=$3 rep=$4
    $exe eval --model "$model" --text "$TEXT" --ctx 64 --max-windows 3 \
        --act q8 --backend "$backend" --threads 1 --report "$rep" >"${rep%.json}.log" 2>&1 ||
        { cat "${rep%.json}.log"; echo "[arm64] eval failed ($model)"; return 1; }
}

# x86 (scalar reference backend `cpu`: cpu-neon's int8 products give its floats exactly) against
# aarch64 (cpu-neon under qemu). TQ2_0: converted on both (absmean is cheap to emulate; the files
# should be identical), each evaluated where it was made. MTQ (2 planes): the residual quantizer
# is slow to emulate, so the x86 file is evaluated on both.
e2e() {
    local fail=0 d A="${QEMU[*]} -cpu max $B/bin/bt-pipeline" X="$X86/bin/bt-pipeline"
    d=$(realpath -m "$B/e2e")
    rm -rf "$d"
    mkdir -p "$d"
    # the first 16 KB of the eval text: tokenizing all of it costs more than the windows under
    # emulation
    TEXT=$d/eval_head.txt
    head -c 16384 "$SHARED/data/eval_kjv.txt" >"$TEXT"
    convert "$X" "$d/tq2_0/x86" absmean tq2_0 "scale=lsq"
    evaluate "$X" "$d/tq2_0/x86/model.gguf" cpu "$d/tq2_0/x86/eval.json"
    convert "$X" "$d/mtq/x86" residual mtq "bases=2"
    evaluate "$X" "$d/mtq/x86/model.gguf" cpu "$d/mtq/x86/eval.json"
    if [ -n "${BT_ARM64_X86ONLY:-}" ]; then
        echo "[arm64] x86 perplexity: tq2_0 $(ppl_of "$d/tq2_0/x86/eval.json"), mtq $(ppl_of "$d/mtq/x86/eval.json")"
        return 0
    fi
    convert "$A" "$d/tq2_0/arm64" absmean tq2_0 "scale=lsq"
    local same="differ"
    cmp -s "$d/tq2_0/x86/model.gguf" "$d/tq2_0/arm64/model.gguf" && same="identical"
    echo "[arm64] bt-tiny tq2_0: the x86 and aarch64 conversions are $same"
    evaluate "$A" "$d/tq2_0/arm64/model.gguf" cpu-neon "$d/tq2_0/arm64/eval.json"
    mkdir -p "$d/mtq/arm64"
    evaluate "$A" "$d/mtq/x86/model.gguf" cpu-neon "$d/mtq/arm64/eval.json"
    for type in tq2_0 mtq; do
        local px pa
        px=$(ppl_of "$d/$type/x86/eval.json")
        pa=$(ppl_of "$d/$type/arm64/eval.json")
        if python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b)<=1e-4*abs(a) else 1)' "$px" "$pa"; then
            echo "[arm64] bt-tiny $type: perplexity x86 (cpu) $px, aarch64 (cpu-neon) $pa: equal within 1e-4 relative"
        else
            echo "[arm64] bt-tiny $type: perplexity x86 (cpu) $px, aarch64 (cpu-neon) $pa: NOT within 1e-4 relative"
            fail=1
        fi
    done
    return $fail
}

want() { [ "$PARTS" = all ] || [[ " $PARTS " == *" $1 "* ]]; }
want setup && part setup setup
want build && part build build
# every op on the dotprod CPU; the plain CPU differs only in the int8 MATMUL kernels (the rest
# of the kernel table is shared), so it runs the matmul cases (emulation is ~100x slower)
both() { # the two runs side by side (the harness is mostly one thread; CI has two cores)
    local rc=0
    conformance max neon+dotprod & local p1=$!
    conformance cortex-a72 neon --op matmul & local p2=$!
    wait $p1 || rc=1
    wait $p2 || rc=1
    return $rc
}
want conformance && part conformance both
want e2e && part e2e e2e
echo "[arm64] total: $(( $(date +%s) - start )) s"
