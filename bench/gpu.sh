#!/usr/bin/env bash
# GPU figures for bench/README.md, on a machine with a CUDA GPU: the CUDA tests, proxy-training
# throughput against the plain loop at the proxy size and at 224 px, and the wall time and GPU
# utilisation of the default search and of Fig. 8 at the GPU preset (train=gpu, full width).
#   bash bench/gpu.sh [tests] [throughput] [searches]     (no argument: all three)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${GPU_BENCH_OUT:-runs/gpu-bench}; mkdir -p "$out"
sections=${*:-tests throughput searches}
want() { [[ " $sections " == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
date -u +"%Y-%m-%d %H:%M UTC"

if want tests; then python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py -rs 2>&1 | tail -5; fi
if want throughput; then
    python3 bench/throughput.py --device cuda
    python3 bench/throughput.py --device cuda --paper
fi
want searches || exit 0

timed() {  # name, then the command: wall time and mean GPU utilisation while it ran
    local name=$1; shift
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$out/$name.util" &
    local smi=$! start=$(date +%s.%N)
    "$@" > "$out/$name.log" 2>&1; local rc=$?
    kill $smi
    python3 - "$name" "$start" "$rc" "$out/$name.util" <<'PY'
import sys, time
name, start, rc, util = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
values = [float(v) for v in open(util).read().split() if v.strip().isdigit()]
mean = sum(values) / len(values) if values else float("nan")
print(f"{name}: {time.time() - start:.0f} s wall, exit {rc}, GPU utilisation mean {mean:.0f}% over {len(values)} samples")
PY
}
timed default_search python3 run_search.py base=mobilenetv2 train.device=cuda runs_dir="$out" name=default
timed default_search_gpu_preset python3 run_search.py base=mobilenetv2 train=gpu base.width=1.0 runs_dir="$out" name=default-gpu
timed fig8_gpu_preset python3 run_search.py experiment=fig8 train=gpu base.width=1.0 runs_dir="$out" name=fig8-gpu
