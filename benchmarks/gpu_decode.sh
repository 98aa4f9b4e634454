#!/usr/bin/env bash
# Self-speculative decoding on a CUDA GPU: the CPU benchmark's model (loaded from runs/ if it
# is there, else trained on the GPU in seconds), then a model with a deeper trunk, closer to
# the paper's proportions (its 7B models have 4 head layers out of 32). Extra arguments go
# to every run, e.g. `benchmarks/gpu_decode.sh --repeats 5`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
status=0
$PY benchmarks/decode.py --device cuda "$@" || status=1
$PY benchmarks/decode.py --device cuda --layers 16 "$@" || status=1
# Exactness in full precision (bf16 rounds a block of tokens and single tokens differently).
$PY benchmarks/decode.py --device cuda --layers 16 --fp32 --batches 32 "$@" || status=1
exit $status
