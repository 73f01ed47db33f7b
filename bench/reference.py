"""A plain PyTorch training loop, as a typical tutorial writes it: the baseline of throughput.py.

Map-style Dataset with per-sample augmentation (random crop with zero padding, horizontal flip,
normalisation), DataLoader(batch_size, shuffle=True) with its defaults (num_workers=0), NCHW
model, the run's optimizer (search.proxy.make_optimizer) under a one-cycle schedule, `loss.item()`
every step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from search.proxy import make_optimizer


class AugmentedImages(Dataset):
    """uint8 images, returned one at a time as augmented, normalised float CHW tensors."""

    def __init__(self, images, labels, mean, std, padding: int, flip: bool):
        self.images, self.labels = images, labels
        self.mean, self.std = mean[0], std[0]  # (C, 1, 1)
        self.padding, self.flip = padding, flip

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = (self.images[i].float() - self.mean) / self.std
        if self.padding:
            p, size = self.padding, x.shape[-1]
            x = F.pad(x, (p, p, p, p))
            top, left = torch.randint(0, 2 * p + 1, (2,)).tolist()
            x = x[:, top : top + size, left : left + size]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.labels[i]


def train_reference(model: nn.Module, data, cfg, steps: int, device: str = "cpu") -> int:
    """Train for `steps` batches the tutorial way; returns the images processed. On a GPU the
    tutorial way keeps the data set on the host and copies each batch over."""
    data = type(data)(data.images.cpu(), data.labels.cpu(), data.mean.cpu(), data.std.cpu())
    model.to(device)
    padding = int(round(cfg.crop_padding * data.images.shape[-1]))
    dataset = AugmentedImages(data.images, data.labels, data.mean, data.std, padding, cfg.flip)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True)
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    optimizer = make_optimizer(model, cfg)  # the search's own: the loops differ in everything but the update
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps)
    model.train()
    running_loss, seen = 0.0, 0
    for step, (x, y) in enumerate(loader):
        if step == steps:
            break
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running_loss += loss.item()
        seen += len(y)
    return seen
