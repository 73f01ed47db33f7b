"""The in-memory image set (uint8 tensors), the data config, and the seeded split and caps.

``load_splits(cfg)`` returns ``(train, val)``; ``resize_images`` turns uint8 images into float32 at the
resolution a scaled network wants.  Formats: ``synthetic`` (needs no files), ``idx`` / ``fashion_mnist``
(MNIST IDX files), ``cifar10`` / ``cifar100`` (python pickle batches) and ``image_folder``
(root/<class>/<images>, or root/train/... with root/val/... as the test split).  Validation is carved from
the training set (stratified, seeded); the test split is read only when ``use_test_set`` is true, and is
then the validation set.

The synthetic renderer is `search/data/synthetic.py`; the file readers are `search/data/files.py`.
"""

import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

NAMES = ("synthetic", "idx", "fashion_mnist", "cifar10", "cifar100", "image_folder")
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist/"  # Debian package dataset-fashion-mnist


class DataError(ValueError):
    """Bad data configuration or unreadable data file; the message is one line."""


@dataclass
class DataConfig:
    name: str = "synthetic"  # one of NAMES
    root: Optional[str] = None  # folder of a real format; fashion_mnist defaults to FASHION_MNIST_ROOT
    num_train: Optional[int] = None  # cap on training images, applied after the split (None = all)
    num_val: Optional[int] = None  # cap on validation images, applied after the split (None = all)
    val_fraction: float = 0.1  # share of the training set held out as val (synthetic: also the test size)
    use_test_set: bool = False  # True: train on the whole training set and use the test split as val
    seed: int = 0  # seeds the split, the subsets the caps keep, and the synthetic images
    synthetic_size: int = 10000  # synthetic: images in the training set (train + val)
    native_size: int = 64  # synthetic: image side in px; image_folder: the side every image is resized to
    num_classes: int = 10  # synthetic: number of classes, 2..20
    channels: int = 3  # synthetic: 3 (RGB) or 1 (grey)
    cache_dir: Optional[str] = None  # image_folder: decoded-image cache (None: $XDG_CACHE_HOME/compound-scaling)


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    num_classes: int
    name: str
    mapped_from: Optional[str] = None  # the .npy file `images` is memory-mapped from, if any

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            found = f"{self.images.dtype} {tuple(self.images.shape)}"
            raise DataError(f"{self.name}: images are {found}: expected uint8 (N, C, H, W)")
        if self.labels.shape != (len(self.images),):
            found = f"{len(self.labels)} labels for {len(self.images)} images"
            raise DataError(f"{self.name}: {found}: expected one label per image")
        low, high = (int(self.labels.min()), int(self.labels.max())) if len(self.labels) else (0, 0)
        if not 0 <= low <= high < max(self.num_classes, 1):
            raise DataError(f"{self.name}: labels span {low}..{high}: expected 0..{self.num_classes - 1}")

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def native_size(self) -> int:
        return self.images.shape[2]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> "ImageSet":
        """The images at `index`, copied into memory.

        From a memory-mapped file, by plain reads (in file order) rather than through the mapping:
        mapped pages count towards the process's memory, and the kernel maps large neighbourhoods of
        each page read, so a gather through the mapping held the whole file beside the copy (peak
        2x; reads: 1x). The page cache still shares the file between processes and runs.
        """
        if self.mapped_from is None:
            return ImageSet(self.images[index], self.labels[index], self.num_classes, self.name)
        start = np.load(self.mapped_from, mmap_mode="r").offset  # the length of the .npy header
        image_bytes = math.prod(self.images.shape[1:])
        out = np.empty((len(index), *self.images.shape[1:]), np.uint8)
        sources = index.numpy()
        with open(self.mapped_from, "rb") as file:
            for row in np.argsort(sources, kind="stable"):
                os.preadv(file.fileno(), [out[row]], start + int(sources[row]) * image_bytes)
        return ImageSet(torch.from_numpy(out), self.labels[index], self.num_classes, self.name)


def resize_images(images: torch.Tensor, size: int, batch: int = 512) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 (N, C, size, size) in [0, 1]: antialiased bilinear, ``batch`` at a time."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise DataError(f"resize_images got {images.dtype} {tuple(images.shape)}: expected uint8 (N, C, H, W)")
    if not isinstance(size, int) or size < 1:
        raise DataError(f"resize_images size={size!r}: expected a positive int")
    if images.shape[2:] == (size, size):
        return images.float().div_(255)
    out = torch.empty(len(images), images.shape[1], size, size)
    for start in range(0, len(images), batch):  # bounds the float copy of the uint8 images
        chunk = images[start : start + batch].float().div_(255)
        out[start : start + batch] = F.interpolate(
            chunk, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return out.clamp_(0, 1)  # guard against rounding just outside [0, 1]


# ---------------------------------------------------------------- checks, split, caps


def check_config(cfg: DataConfig) -> None:
    """Reject data settings no format can use (the synthetic set checks its own: synthetic.check_config)."""
    if cfg.name not in NAMES:
        raise DataError(f"data.name={cfg.name!r} is not one of: {', '.join(NAMES)}")
    if not 0 < cfg.val_fraction < 1:
        raise DataError(f"data.val_fraction={cfg.val_fraction!r} is not in (0, 1)")
    for field in ("num_train", "num_val"):
        value = getattr(cfg, field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise DataError(f"data.{field}={value!r} is not a positive int or None")
    if cfg.native_size < 8:
        raise DataError(f"data.native_size={cfg.native_size!r} is too small: expected >= 8")


def val_count(n: int, val_fraction: float) -> int:
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise DataError(f"data.val_fraction={val_fraction!r} leaves an empty split of {n} training images")
    return n_val


def stratified_split(labels: torch.Tensor, val_fraction: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val) of a set with these labels, each shuffled (so that a cap keeps a random subset)."""
    n, n_val = len(labels), val_count(len(labels), val_fraction)
    order = torch.randperm(n, generator=gen)
    order = order[torch.argsort(labels[order], stable=True)]  # classes contiguous, random within a class
    # Every (n / n_val)-th image of that order goes to val: each class gives its share, give or take one.
    step = torch.arange(n + 1) * n_val // n
    is_val = step[1:] != step[:-1]
    return shuffled(order[~is_val], gen), shuffled(order[is_val], gen)


def shuffled(index: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=gen)]


def pick(images: ImageSet, index: torch.Tensor, cap: Optional[int]) -> ImageSet:
    """The images at `index`, at most `cap` of them: one gather, so a memory-mapped set is copied once."""
    return images.subset(index if cap is None else index[:cap])
