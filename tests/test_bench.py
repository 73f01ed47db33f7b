"""The speed benches run end to end: `bash bench/run_all.sh` stops at the first one that fails, and
no other test calls them (limits.py and ablation.py once called throughput.ours with too few arguments)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

QUICK = {  # script: (arguments, index of a measured number in its mobilenetv1 row)
    "throughput.py": (["--quick", "--bases", "mobilenetv1"], 1),  # ours img/s
    "limits.py": (["--quick", "--bases", "mobilenetv1"], 3),  # img/s
    "ablation.py": (["--bases", "mobilenetv1", "--steps", "2", "--repeats", "1"], 2),  # default img/s
}


@pytest.mark.parametrize("script", QUICK)
def test_speed_bench_prints_a_measured_row(script):
    args, column = QUICK[script]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("mobilenetv1"))
    assert float(row.split()[column]) > 0, row
