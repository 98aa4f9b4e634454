#!/usr/bin/env bash
# Correctness and speed of training on a GPU machine, in at most 8 minutes. Installs nothing:
# it needs only torch, numpy, pandas, networkx, tqdm and pytest, and runs from a plain checkout.
#
#     bash benchmarks/gpu.sh            # results also land in $OUT (default /tmp/mtp-gpu)
#
# 1. the CPU float64 gradient-equivalence tests (tests/test_objective.py), as a sanity check of
#    the environment;
# 2. benchmarks/gpu_check.py: efficient against plain backward on the GPU in fp32 and bf16, the
#    compiled model against the eager one, and no host synchronisation inside a training step;
# 3. benchmarks/train_throughput.py: the 30M and 100M presets at context 1024 (batch 32) and 2048
#    (batch 16), bf16, compiled first (the MFU target), then eager, and the 32k-vocabulary memory
#    group; groups not started within the time budget are skipped and listed. Ends with the full
#    table, the targets (met / MISSED) and a short table, one line per group.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/mtp-gpu}"
mkdir -p "$OUT"
status=0
start=$SECONDS

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader || status=1
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

echo "== gradient equivalence, CPU float64 (tests/test_objective.py)"
timeout 120 python -m pytest -q -p no:cacheprovider tests/test_objective.py 2>&1 | tail -n 2 || status=1

echo "== efficient vs plain backward on the GPU, compiled vs eager, host syncs ($((SECONDS - start)) s)"
timeout 150 python benchmarks/gpu_check.py --device cuda 2>&1 | tee "$OUT/gpu_check.txt" | tail -n 60
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== training throughput ($((SECONDS - start)) s)"
budget=$((370 - (SECONDS - start)))
[ "$budget" -gt 60 ] || budget=60
timeout $((budget + 90)) python benchmarks/train_throughput.py --device cuda --sizes 30M,100M --context 1024,2048 \
    --batch-size 32 --compile both --steps 10 --repeats 3 --budget-s "$budget" \
    --big-vocab 32000 --big-vocab-batch 8 2>&1 | tee "$OUT/throughput.txt" | grep -v -e "^USDT" -e "Warning"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

echo "== done in $((SECONDS - start)) s, status $status (outputs in $OUT)"
exit $status
