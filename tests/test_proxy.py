"""The proxy training loop's parts: augmentation, schedule, precise BN, divergence, determinism."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from models import create
from search.config import TrainConfig
from search.data import ImageSet
from search.proxy import (
    TrainingDiverged, augment, channel_stats, lr_factor, prepare, recalibrate_batch_norm, steps_in_epoch, train,
)

CPU = torch.device("cpu")


def _tiny_split(n=64, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    images[:, labels % 3, :4, :4] = 255  # a learnable mark
    return ImageSet(images, labels, 4, "tiny")


def test_augment_keeps_shape_dtype_and_pixels():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = augment(x, padding=2, flip=True, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    same = augment(x, padding=0, flip=False, generator=torch.Generator())
    assert torch.equal(same, x)
    # a translation moves pixels but invents none: every non-zero value comes from the same image
    for i in range(2):
        assert set(out[i].unique().tolist()) - {0.0} <= set(x[i].unique().tolist())


def test_onecycle_and_cosine_schedules():
    total = 100
    onecycle = [lr_factor(s, total, 0, "onecycle") for s in range(total)]
    assert onecycle[0] == pytest.approx(1 / 25) and max(onecycle) == pytest.approx(1.0, abs=0.01)
    assert onecycle[-1] < 0.01 and onecycle.index(max(onecycle)) == 30
    cosine = [lr_factor(s, total, 10, "cosine") for s in range(total)]
    assert cosine[0] == pytest.approx(0.1) and cosine[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(cosine[10:], cosine[11:]))


def test_steps_in_epoch_caps_and_drops_partial_batches():
    assert steps_in_epoch(TrainConfig(batch_size=32, max_images=None), 100) == 3
    assert steps_in_epoch(TrainConfig(batch_size=32, max_images=64), 1000) == 2
    assert steps_in_epoch(TrainConfig(batch_size=32, max_images=None), 10) == 1


def test_precise_bn_replaces_stale_running_statistics():
    split = _tiny_split()
    data = prepare(split, 16, channel_stats(split.images), CPU)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    bn = net[1]
    bn.running_mean.fill_(100.0)
    recalibrate_batch_norm(net, data, images=64, batch_size=16, channels_last=False, autocast=contextlib.nullcontext)
    with torch.no_grad():
        conv = net[0](((data.images.float() - data.mean) / data.std))
    assert torch.allclose(bn.running_mean, conv.mean((0, 2, 3)), atol=1e-4)
    assert bn.momentum == 0.1  # restored


def test_divergence_raises():
    split = _tiny_split()
    data = prepare(split, 16, channel_stats(split.images), CPU)
    net, _ = create("resnet18", 0.5, 0.25, 4, 3, "small")
    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e12, momentum=0.0, label_smoothing=0.0)
    with pytest.raises(TrainingDiverged, match="training loss became"):
        train(net, data, data, cfg, CPU, seed=0)


def test_same_seed_same_scores():
    split = _tiny_split()
    data = prepare(split, 16, channel_stats(split.images), CPU)
    cfg = TrainConfig(epochs=2, batch_size=16)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        net, _ = create("mobilenetv2", 0.5, 0.25, 4, 3, "small")
        results.append(train(net, data, data, cfg, CPU, seed=3))
    assert results[0].accuracies == results[1].accuracies and results[0].losses == results[1].losses
    assert results[0].images_seen == 2 * 4 * 16
