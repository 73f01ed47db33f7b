"""Shared helpers: compose the real Hydra config, run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Two cores: one thread per test process avoids oversubscription when pytest and a subprocess overlap.
torch.set_num_threads(1)

# A search that finishes in seconds: ResNet-18 at quarter width on 16 px, 3 candidates.
TINY = [
    "base=resnet18", "base.width=0.25", "base.resolution=16",
    "data.synthetic_size=300", "data.native_size=32",
    "search.alpha.min=1", "search.alpha.max=2", "search.alpha.step=1",
    "search.beta.min=1", "search.beta.max=1.5", "search.beta.step=0.5",
    "search.gamma.min=1", "search.gamma.max=1.5", "search.gamma.step=0.5",
    "search.tolerance=0.3", "search.flops_tolerance=0.6",
    "train.epochs=2", "train.batch_size=32", "train.threads=1",
]


def compose(*overrides, runs_dir):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from search.config import register

    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=[*TINY, f"runs_dir={runs_dir}", *overrides])


def run_cli(*overrides, runs_dir, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *TINY, f"runs_dir={runs_dir}", *overrides],
        capture_output=True, text=True, env=env, cwd=ROOT, **kwargs,
    )


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"
