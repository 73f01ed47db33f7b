#!/usr/bin/env bash
# GPU figures for bench/README.md, on a machine with a CUDA GPU: the CUDA tests, the whole suite,
# proxy-training throughput against the plain loop at the proxy size and at 224 px, and the wall
# time, phases and GPU utilisation of the default search and of Fig. 8 at the GPU preset.
#   bash bench/gpu.sh [tests] [suite] [throughput] [default] [preset] [fig8]    (no argument: all six)
# GPU_BENCH_OUT: where runs and logs go (runs/gpu-bench); FIG8_WORKERS: processes sharing the GPU
# for Fig. 8 (1; more than 1 uses storage=journal); FIG8_TIMEOUT: search.timeout of Fig. 8, after
# which no candidate is started (0 = none; the same command again trains the ones left).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${GPU_BENCH_OUT:-runs/gpu-bench}; mkdir -p "$out"
sections=${*:-tests suite throughput default preset fig8}
want() { [[ " $sections " == *" $1 "* ]]; }
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
date -u +"%Y-%m-%d %H:%M UTC"; nproc

if want tests; then python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py -rs 2>&1 | tail -5; fi
if want suite; then  # pytest-xdist: the suite's process tests are CPU-bound
    start=$(date +%s); python3 -m pytest -q -p no:cacheprovider -n 8 -rs > "$out/suite.log" 2>&1
    echo "whole suite: exit $?, $(( $(date +%s) - start )) s: $(tail -1 "$out/suite.log")"
fi
if want throughput; then
    python3 bench/throughput.py --device cuda
    python3 bench/throughput.py --device cuda --paper
fi

timed() {  # name, then run_search.py's overrides: wall time, phases, mean GPU utilisation
    local name=$1; shift
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$out/$name.util" &
    local smi=$! start=$(date +%s.%N)
    python3 bench/timed_search.py "$out/$name.json" runs_dir="$out" name="$name" "$@" > "$out/$name.log" 2>&1; local rc=$?
    kill $smi
    python3 - "$name" "$start" "$rc" "$out" <<'PY'
import json, pathlib, sys, time
name, start, rc, out = sys.argv[1], float(sys.argv[2]), sys.argv[3], pathlib.Path(sys.argv[4])
values = [float(v) for v in (out / f"{name}.util").read_text().split() if v.strip().isdigit()]
mean = sum(values) / len(values) if values else float("nan")
print(f"{name}: {time.time() - start:.0f} s wall, exit {rc}, GPU utilisation mean {mean:.0f}% over {len(values)} samples")
timings = out / f"{name}.json"
if timings.exists():
    phases = json.loads(timings.read_text())
    print("  phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items() if k != "peak_rss_bytes"))
PY
}
if want default; then timed default base=mobilenetv2 train.device=cuda; fi
if want preset; then timed default-gpu-preset base=mobilenetv2 preset=gpu; fi
if want fig8; then
    workers=${FIG8_WORKERS:-1}
    extra=(); [ "$workers" -gt 1 ] && extra=(storage=journal search.workers="$workers")
    [ "${FIG8_TIMEOUT:-0}" -gt 0 ] && extra+=(search.timeout="$FIG8_TIMEOUT")
    timed fig8-gpu-preset experiment=fig8 preset=gpu "${extra[@]}"
fi
