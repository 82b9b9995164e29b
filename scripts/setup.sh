#!/usr/bin/env bash
# setup.sh - install what bt needs to build and test on a Debian machine (idempotent):
# compiler, CMake, pkg-config, inih, zstd, json-c, PCRE2, OpenBLAS + LAPACKE, OpenSSL libcrypto (sha256), OpenCL headers + ICD
# loader + PoCL (OpenCL on the CPU, for the opencl backend's tests), clang + LLVM + the compiler-rt
# sanitizer/libFuzzer runtimes (the clang, sanitizer and fuzz parts of .ci/run) from Debian;
# gguf-py + numpy + regex + tokenizers (the Hugging Face tokenizer, a test reference) from PyPI.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libinih-dev libzstd-dev libjson-c-dev libpcre2-dev libopenblas-dev liblapacke-dev libssl-dev python3 python3-pip ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo clang llvm libclang-rt-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
if ! $PY -c "import gguf, numpy, regex, jinja2, tokenizers" >/dev/null 2>&1; then
  $PY -m pip install -q gguf numpy regex jinja2 tokenizers 2>/dev/null || $PY -m pip install -q --break-system-packages gguf numpy regex jinja2 tokenizers
fi
