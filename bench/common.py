"""Shared bench helpers: the real default config, its data and a base's proxy model."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/x.py` from anywhere

import search  # noqa: E402,F401  (before torch: sets the OpenMP wait policy the search runs with)
import torch  # noqa: E402

from search.trials.context import load_data  # noqa: E402
from search.proxy import channel_stats, prepare  # noqa: E402

BASES = ("mobilenetv1", "mobilenetv2", "efficientnet_b0", "resnet18", "resnet50")


def compose(*overrides):
    """The config `run_search.py` would run with these overrides (Hydra, conf/)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from search.config import register

    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def proxy_model(cfg, train_data):
    """The base network at its proxy size, as the search's base candidate, for the classes and channels
    of `train_data` (prepared; a real set's, e.g. Fashion-MNIST's one grey channel, not the config's)."""
    from models import create

    b = cfg.base
    classes = int(train_data.labels.max()) + 1  # the training split holds every class (stratified)
    net, _ = create(b.name, b.depth, b.width, classes, train_data.images.shape[1], b.variant)
    return net


def default_data(cfg, device: str = "cpu"):
    """(train, val) prepared at the base's proxy resolution on `device`, as the search prepares them."""
    train, val = load_data(cfg)
    stats = channel_stats(train.images)
    device = torch.device(device)
    return prepare(train, cfg.base.resolution, stats, device), prepare(val, cfg.base.resolution, stats, device)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def machine() -> str:
    import platform

    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads{gpu}, torch {torch.__version__}"
