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
    TrainingDiverged, augment, channel_stats, lr_factor, make_optimizer, prepare, recalibrate_batch_norm, steps_in_epoch, train,
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


def test_adamw_steps_every_weight_by_the_learning_rate_whatever_its_scale():
    """The reason for adamw: a first step of lr per weight (bias-corrected Adam), where SGD's
    step is lr x gradient; batch norm and biases are never decayed under either optimizer."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    net[0].weight.data[0] *= 100  # one row 100x larger than the others
    before = [p.detach().clone() for p in net.parameters()]
    optimizer = make_optimizer(net, TrainConfig(optimizer="adamw", lr=0.01, weight_decay=0.0))
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["betas"][0] == 0.9
    assert [g["weight_decay"] for g in make_optimizer(net, TrainConfig(optimizer="adamw")).param_groups][1] == 0.0
    (net(torch.randn(8, 4)) * torch.randn(8, 3)).sum().backward()
    optimizer.step()
    step = (net[0].weight.detach() - before[0]).abs()
    assert torch.allclose(step, torch.full_like(step, 0.01), rtol=1e-3)
    sgd = make_optimizer(net, TrainConfig(optimizer="sgd", lr=0.01, momentum=0.0))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["weight_decay"] == TrainConfig().weight_decay


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
