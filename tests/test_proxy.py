"""The proxy training loop's parts: augmentation, schedule, precise BN, divergence, determinism."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from models import create
from search.checkpoint import Checkpoint
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


def _resumable_setup():
    split = _tiny_split()
    data = prepare(split, 16, channel_stats(split.images), CPU)
    cfg = TrainConfig(epochs=3, batch_size=16)

    def fresh():
        torch.manual_seed(0)
        net, _ = create("efficientnet_b0", 0.5, 0.25, 4, 3, "small")  # dropout and stochastic depth draw from the global RNG
        return net

    return data, cfg, fresh


class _Stop(Exception):
    pass


def test_an_interrupted_training_resumes_to_the_same_weights_and_scores(tmp_path):
    data, cfg, fresh = _resumable_setup()
    whole_net = fresh()
    whole = train(whole_net, data, data, cfg, CPU, seed=3)

    checkpoint = Checkpoint(tmp_path, "study", "candidate", 3, cfg.epochs)

    def stop_after_two(result):
        if len(result.accuracies) == 2:
            raise _Stop

    with pytest.raises(_Stop):
        train(fresh(), data, data, cfg, CPU, seed=3, on_epoch=stop_after_two, checkpoint=checkpoint)
    torch.manual_seed(123)  # whatever the global generator did in between is undone by the restore
    heard, seen = [], []
    resumed_net = fresh()
    resumed = train(resumed_net, data, data, cfg, CPU, seed=3, checkpoint=checkpoint,
                    on_epoch=lambda r: heard.append(len(r.accuracies)), progress=seen.append)
    assert heard == [2, 3]  # the restored epochs are told at once, then the one trained
    assert seen[0] == 2 * 4 * 16 and len(seen) == 1 + 4  # the restored images, then the third epoch's steps
    assert resumed.accuracies == whole.accuracies and resumed.losses == whole.losses
    assert resumed.images_seen == whole.images_seen
    for (name, a), b in zip(whole_net.state_dict().items(), resumed_net.state_dict().values()):
        assert torch.equal(a, b), name


def test_an_unreadable_checkpoint_is_removed_and_training_starts_afresh(tmp_path, caplog):
    data, cfg, fresh = _resumable_setup()
    whole = train(fresh(), data, data, cfg, CPU, seed=3)
    checkpoint = Checkpoint(tmp_path, "study", "candidate", 3, cfg.epochs)
    checkpoint.path.parent.mkdir(parents=True)
    checkpoint.path.write_bytes(b"not a checkpoint")  # e.g. a disk that filled up
    again = train(fresh(), data, data, cfg, CPU, seed=3, checkpoint=checkpoint)
    assert again.accuracies == whole.accuracies
    assert "unreadable checkpoint" in caplog.text
    assert checkpoint.path.exists()  # the state of the new training's last epoch


def test_checkpoints_are_named_by_study_candidate_seed_and_epochs(tmp_path):
    base = Checkpoint(tmp_path, "s", "k", 0, 4).path
    others = [Checkpoint(tmp_path, *args).path for args in [("t", "k", 0, 4), ("s", "j", 0, 4), ("s", "k", 1, 4), ("s", "k", 0, 16)]]
    assert len({base, *others}) == 5 and base == Checkpoint(tmp_path, "s", "k", 0, 4).path
