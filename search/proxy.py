"""Short proxy trainings: images held in memory, augmentation per batch on tensors.

The loop avoids what makes small-model training slow on a CPU: no per-sample Python work, no
DataLoader workers, no host sync per step (the loss is accumulated on the device and read
once per epoch), channels-last memory, and evaluation under inference mode in batches of 256
(larger ones overflow a CPU's caches: slower, and 1024 cost 0.7 GB more memory). On CUDA the
data stays on the device, every random draw (order, translations, flips) is made there by a
device generator, so no step waits for the host; mixed precision is bf16 where the GPU has it,
else fp16 with a gradient scaler (`train.precision`); cuDNN picks the fastest kernels for a
candidate's fixed shapes unless `train.deterministic` asks for reproducible ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from search import timing
from search.checkpoint import Checkpoint
from search.data import ImageSet, resize_images
from search.device import autocast_for, resolve_precision, set_determinism


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class PreparedData:
    """One split at one resolution, ready for batching: uint8 images on the training device."""

    images: torch.Tensor  # uint8 (N, C, R, R)
    labels: torch.Tensor  # int64 (N,)
    mean: torch.Tensor  # (1, C, 1, 1) per-channel mean of the training split, in [0, 255] units
    std: torch.Tensor


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images, in [0, 255] units, shaped (1, C, 1, 1).

    Summed in chunks: a float copy of the whole set would be 4x its size (440 MB at the default).
    """
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(1024):
        x = chunk.double()
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    n = images.numel() // images.shape[1]
    mean = total / n
    var = (squares - n * mean.square()) / max(n - 1, 1)  # unbiased, as Tensor.std
    shape = (1, -1, 1, 1)
    return mean.float().view(shape), var.clamp_min(0).sqrt().float().clamp_min(1.0).view(shape)


def prepare(split: ImageSet, resolution: int, stats, device: torch.device) -> PreparedData:
    """Resize a split once to `resolution` and keep it as uint8 (4x smaller than float)."""
    if resolution == split.images.shape[-1]:
        images = split.images
    else:  # in chunks: a float copy of the whole split would be 4x its size
        chunks = [resize_images(c, resolution).mul_(255).round_().to(torch.uint8) for c in split.images.split(1024)]
        images = torch.cat(chunks)
    mean, std = stats
    return PreparedData(images.to(device), split.labels.to(device), mean.to(device), std.to(device))


def augment(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random translation by up to `padding` px (zero fill) and horizontal flip, per sample.
    `generator` lives on x's device: the draws never cross to the host."""
    n, _, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device=x.device)
        rows = (dy + torch.arange(h, device=x.device))[:, :, None]  # (N, H, 1)
        cols = (dx + torch.arange(w, device=x.device))[:, None, :]  # (N, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(n, generator=generator, device=x.device) < 0.5)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return x


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate multiplier at `step`: linear warm-up, then cosine decay (one-cycle: to 1/25 start)."""
    if schedule == "onecycle":
        warmup = max(1, int(0.3 * total))
        start = 1 / 25
        if step < warmup:
            return start + (1 - start) * step / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TrainResult:
    accuracies: list[float] = field(default_factory=list)  # validation accuracy after each epoch
    losses: list[float] = field(default_factory=list)  # mean training loss of each epoch
    images_seen: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    precision: str = "fp32"  # what the forward passes ran in: fp32, bf16 or fp16

    @property
    def accuracy(self) -> float:
        return self.accuracies[-1] if self.accuracies else float("nan")


def _param_groups(model: nn.Module, weight_decay: float):
    """No weight decay on batch norm and biases (standard for short schedules)."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _normalise(batch_uint8, data: PreparedData, channels_last: bool):
    x = (batch_uint8.float() - data.mean) / data.std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def make_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, or AdamW with beta1 = cfg.momentum.

    AdamW sizes each weight's step by its own gradient history. Under SGD a depthwise kernel's
    step is 10-100x larger, relative to its weights, than a 1x1 projection's; on MobileNetV2 that
    left one seed in three at chance after 96 steps (docs/evidence/proxy-probes-2026-11-23.md).
    """
    groups = _param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.99))
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)


@torch.no_grad()
def recalibrate_batch_norm(model, data: PreparedData, images: int, batch_size: int, channels_last: bool, autocast):
    """Re-estimate batch-norm statistics on `images` training images ("precise BN").

    In a short training the running averages lag far behind weights that still move fast, and
    a network evaluated with them can predict a single class; exact averages over a few
    hundred images fix that for about 5% of an epoch's cost.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or images <= 0:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for start in range(0, min(images, len(data.labels)), batch_size):
        with autocast():
            model(_normalise(data.images[start : start + batch_size], data, channels_last))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


@torch.inference_mode()
def evaluate(model, data: PreparedData, batch_size: int, channels_last: bool, autocast) -> float:
    """Top-1 accuracy on a prepared split."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=data.labels.device)
    for start in range(0, len(data.labels), batch_size):
        x = _normalise(data.images[start : start + batch_size], data, channels_last)
        with autocast():
            logits = model(x)
        correct += (logits.argmax(1) == data.labels[start : start + batch_size]).sum()
    return correct.item() / len(data.labels)


def steps_in_epoch(cfg, n: int) -> int:
    """Whole batches of an epoch over `n` images, capped by cfg.max_images (the last partial batch is dropped)."""
    per_epoch = min(n, cfg.max_images) if cfg.max_images else n
    return max(1, per_epoch // cfg.batch_size)


def train(
    model: nn.Module,
    train_data: PreparedData,
    val_data: PreparedData,
    cfg,
    device: torch.device,
    seed: int,
    on_epoch: Optional[Callable[[TrainResult], None]] = None,
    progress: Optional[Callable[[int], None]] = None,
    checkpoint: Optional[Checkpoint] = None,
) -> TrainResult:
    """Train `model` on `train_data` for cfg.epochs and return its validation accuracies.

    `on_epoch(result_so_far)` is called after each epoch's evaluation (it may raise to stop,
    e.g. optuna.TrialPruned); `progress(n_images)` after each step. With a `checkpoint`, the
    training state is saved after each epoch, and a training that finds one goes on from it
    (`on_epoch` and `progress` then hear of the restored epochs first).
    """
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    generator = torch.Generator(device=device).manual_seed(seed)  # every random draw of the loop
    n = len(train_data.labels)
    steps_per_epoch = steps_in_epoch(cfg, n)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, cfg.schedule)
    )
    padding = int(round(cfg.crop_padding * train_data.images.shape[-1]))
    set_determinism(device, cfg.deterministic)
    precision = resolve_precision(cfg.precision, device)
    autocast = autocast_for(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")  # fp16 gradients underflow unscaled
    result = TrainResult(precision=precision)
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}
    done = checkpoint.restore(parts, generator, result) if checkpoint else 0
    if done:
        if progress:
            progress(result.images_seen)
        if on_epoch:
            on_epoch(result)

    for epoch in range(done, cfg.epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator, device=device)[: steps_per_epoch * cfg.batch_size]
        loss_sum = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x = augment(train_data.images[idx], padding, cfg.flip, generator)
            x = _normalise(x, train_data, cfg.channels_last)
            with autocast():
                loss = F.cross_entropy(model(x), train_data.labels[idx], label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)  # a plain optimizer.step() when the scaler is disabled
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach()
            if progress:
                progress(len(idx))
        mean_loss = loss_sum.item() / steps_per_epoch  # the one host sync of the epoch
        result.images_seen += steps_per_epoch * cfg.batch_size
        result.train_seconds += time.perf_counter() - start
        result.losses.append(mean_loss)
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(f"training loss became {mean_loss} in epoch {epoch + 1}")

        start = time.perf_counter()
        with timing.phase("evaluation"):
            recalibrate_batch_norm(model, train_data, cfg.bn_images, cfg.batch_size, cfg.channels_last, autocast)
            accuracy = evaluate(model, val_data, cfg.eval_batch_size, cfg.channels_last, autocast)
        result.eval_seconds += time.perf_counter() - start
        result.accuracies.append(accuracy)
        if checkpoint:
            checkpoint.save(parts, generator, result)
        if on_epoch:
            on_epoch(result)
    return result
