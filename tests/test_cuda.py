"""The CUDA path on a real GPU: training, no host sync per step, precision, determinism, memory,
one device per worker, a search, an experiment and the latency measurement. Skipped without a GPU."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from models import create
from search.config import TrainConfig
from search.data import ImageSet
from search.memory import release_memory
from search.device import resolve_device, resolve_precision
from search.proxy import channel_stats, prepare, train
from tests.conftest import run_cli

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
GPU = torch.device("cuda") if torch.cuda.is_available() else None


def _data(n=512, size=16):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    images[torch.arange(n), labels % 3, :4, :4] = 255  # a learnable mark
    split = ImageSet(images, labels, 4, "tiny")
    stats = channel_stats(split.images)
    return prepare(split, size, stats, GPU), prepare(split, size, stats, GPU)


def _cfg(**changes):
    return dataclasses.replace(TrainConfig(epochs=2, batch_size=64, bn_images=128), **changes)


def _model():
    torch.manual_seed(0)
    return create("resnet18", width=0.25, num_classes=4, variant="small")[0]


def test_training_on_the_gpu_learns_in_the_precision_the_device_supports():
    train_data, val_data = _data()
    result = train(_model(), train_data, val_data, _cfg(epochs=3), GPU, seed=0)
    expected = "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp16"
    assert result.precision == expected == resolve_precision("auto", GPU)
    assert result.accuracy > 0.5  # the mark makes the task easy; chance is 0.25
    fp32 = train(_model(), train_data, val_data, _cfg(precision="fp32"), GPU, seed=0)
    assert fp32.precision == "fp32"


def test_no_host_sync_inside_the_training_steps():
    """Between the first and the last step of an epoch nothing may wait for the host: augmentation
    draws on the device and the loss is read once per epoch. Sync debug mode raises on any sync."""
    train_data, val_data = _data()
    cfg = _cfg(epochs=1)
    steps = len(train_data.labels) // cfg.batch_size
    calls = []

    def watch(images: int) -> None:
        calls.append(images)
        if len(calls) == 1:
            torch.cuda.set_sync_debug_mode("error")
        if len(calls) == steps - 1:
            torch.cuda.set_sync_debug_mode("default")

    try:
        train(_model(), train_data, val_data, cfg, GPU, seed=0, progress=watch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(calls) == steps >= 4


def test_deterministic_runs_give_the_same_scores():
    train_data, val_data = _data()
    cfg = _cfg(deterministic=True)
    first = train(_model(), train_data, val_data, cfg, GPU, seed=3)
    second = train(_model(), train_data, val_data, cfg, GPU, seed=3)
    assert first.losses == second.losses and first.accuracies == second.accuracies
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    train(_model(), train_data, val_data, _cfg(epochs=1), GPU, seed=3)
    assert torch.backends.cudnn.benchmark  # the default: fastest kernels for fixed shapes


def test_an_interrupted_gpu_training_resumes_to_the_same_scores(tmp_path):
    """The checkpoint restores the CUDA generators too: with reproducible kernels, a training cut
    after its first epoch and resumed ends as one never cut (bf16 autocast, the default)."""
    from search.checkpoint import Checkpoint

    train_data, val_data = _data()
    cfg = _cfg(epochs=3, deterministic=True)
    whole = train(_model(), train_data, val_data, cfg, GPU, seed=3)
    checkpoint = Checkpoint(tmp_path, "study", "candidate", 3, cfg.epochs)

    def cut(result):
        raise InterruptedError

    with pytest.raises(InterruptedError):
        train(_model(), train_data, val_data, cfg, GPU, seed=3, on_epoch=cut, checkpoint=checkpoint)
    resumed = train(_model(), train_data, val_data, cfg, GPU, seed=3, checkpoint=checkpoint)
    assert resumed.accuracies == whole.accuracies and resumed.losses == whole.losses


def test_memory_is_handed_back_between_candidates():
    release_memory()
    before, size = torch.cuda.memory_reserved(), 256 * 2**20
    x = torch.empty(size, dtype=torch.uint8, device=GPU)
    del x  # freed, but still held by the caching allocator
    assert torch.cuda.memory_reserved() >= before + size
    release_memory()
    assert torch.cuda.memory_reserved() <= before


def test_worker_k_gets_gpu_k_mod_the_gpu_count():
    count = torch.cuda.device_count()
    assert [resolve_device("cuda", k).index for k in range(3)] == [k % count for k in range(3)]
    assert resolve_device("auto").type == "cuda"


def test_search_on_the_gpu(runs):
    result = run_cli("name=gpu", "train.device=cuda", runs_dir=runs)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = pd.read_csv(runs / "gpu" / "trials.csv")
    done = trials[trials.state == "COMPLETE"]
    assert len(done) >= 1 and set(done.precision) <= {"bf16", "fp16"}


def test_experiment_dry_run_real_run_and_latency_on_the_gpu(runs):
    tiny = ["experiment=fig8", "name=fig8gpu", "train.device=cuda", "train.epochs=1", "train.max_images=256",
            "data.synthetic_size=600", "series.compound.phi=[0,1]"]
    dry = run_cli(*tiny, "search.dry_run=true", runs_dir=runs)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert not (runs / "fig8gpu" / "trials.csv").exists()
    real = run_cli(*tiny, runs_dir=runs)
    assert real.returncode == 0, real.stderr[-2000:]
    assert (pd.read_csv(runs / "fig8gpu" / "trials.csv").state == "COMPLETE").all()

    from analysis import fig8

    assert fig8.main([str(runs / "fig8gpu"), "--device", "cuda"]) == 0
    latency = pd.read_csv(runs / "fig8gpu" / "latency.csv")
    assert (latency.device == "cuda").all() and (latency.latency_ms > 0).all()
