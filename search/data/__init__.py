"""Image-classification data, held in memory as uint8 tensors: `load_splits(cfg)` -> (train, val).

`images.py` is the in-memory set (ImageSet), the config and the split; `synthetic.py` renders the
default set (no files); `files.py` reads IDX, CIFAR and image-folder files.
"""

import torch

from search.data import files, synthetic
from search.data.images import (
    FASHION_MNIST_ROOT, NAMES, DataConfig, DataError, ImageSet, check_config, pick, resize_images, shuffled,
    stratified_split, val_count,
)

__all__ = ["FASHION_MNIST_ROOT", "NAMES", "DataConfig", "DataError", "ImageSet", "load_splits", "resize_images"]

_READERS = {"idx": files.load_idx, "fashion_mnist": files.load_idx, "cifar10": files.load_cifar,
            "cifar100": files.load_cifar, "image_folder": files.load_image_folder}


def load_splits(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Return (train, val) for ``cfg``; the same cfg always gives the same tensors."""
    check_config(cfg)
    if cfg.name == "synthetic":
        synthetic.check_config(cfg)
        train_pool = synthetic.render_set(cfg.synthetic_size, cfg, stream=2 * cfg.seed)
        n_test = val_count(cfg.synthetic_size, cfg.val_fraction)  # an independent set as large as val
        test = synthetic.render_set(n_test, cfg, stream=2 * cfg.seed + 1) if cfg.use_test_set else None
    else:
        train_pool, test = _READERS[cfg.name](cfg, cfg.use_test_set)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.use_test_set:
        val_pool = test
        train_index, val_index = shuffled(torch.arange(len(train_pool)), gen), shuffled(torch.arange(len(test)), gen)
    else:
        val_pool = train_pool
        train_index, val_index = stratified_split(train_pool.labels, cfg.val_fraction, gen)
    return pick(train_pool, train_index, cfg.num_train), pick(val_pool, val_index, cfg.num_val)
