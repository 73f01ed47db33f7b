"""Image-classification data sets, held in memory as uint8 tensors.

``load_splits(cfg)`` returns ``(train, val)``; ``resize_images`` turns uint8 images into float32 at the
resolution a scaled network wants.  Formats: ``synthetic`` (needs no files), ``idx`` / ``fashion_mnist``
(MNIST IDX files), ``cifar10`` / ``cifar100`` (python pickle batches) and ``image_folder``
(root/<class>/<images>, or root/train/... with root/val/... as the test split).  Validation is carved from
the training set (stratified, seeded); the test split is read only when ``use_test_set`` is true, and is
then the validation set.

The synthetic set
-----------------
Each image (64x64 RGB by default) shows one object on a cluttered background.  A class is a pair:

* a coarse **shape**, which survives down-sampling: disc, square, triangle, ring, cross;
* a fine **texture** inside it: plain, stripes, checker, concentric rings, with a period of 3-4.5 px at
  64 px: at or beyond the Nyquist limit of a 32 px image (partly visible, partly aliased away) and far
  beyond that of a 16 px one (gone).

Class c has shape ``(c // 2) % 5`` and texture ``2 * (c // 10) + c % 2``, so any class count mixes both
cues; the default 10 classes are 5 shapes x {plain, stripes}, the maximum is 20.  A 16 px network can at
best tell the shape, so accuracy rises with resolution, and telling shapes apart in the clutter needs
width and depth.  Nuisances: object position, size, rotation, aspect ratio and colours; texture
orientation, period and phase; a smooth random colour background; up to two capsule-shaped distractors
behind the object (some striped like a textured object) and, a quarter of the time, one in front; grey
pixel noise.  The object spans 40-60% of the image.  A plain object is
painted in the mean of its two colours, so colour says nothing about texture once the stripes blur.

Images are rendered in chunks, vectorised with torch over coordinate grids, from one seeded
``torch.Generator``: the same config gives the same bytes.
"""

import gzip
import math
import pickle
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

NAMES = ("synthetic", "idx", "fashion_mnist", "cifar10", "cifar100", "image_folder")
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist/"  # Debian package dataset-fashion-mnist
SHAPES = ("disc", "square", "triangle", "ring", "cross")
TEXTURES = ("plain", "stripes", "checker", "rings")
MAX_SYNTHETIC_CLASSES = len(SHAPES) * len(TEXTURES)
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp")


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


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    num_classes: int
    name: str

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
        return ImageSet(self.images[index], self.labels[index], self.num_classes, self.name)


def load_splits(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Return (train, val) for ``cfg``; the same cfg always gives the same tensors."""
    _check_config(cfg)
    if cfg.name == "synthetic":
        train_pool = _synthetic(cfg.synthetic_size, cfg, stream=2 * cfg.seed)
        n_test = _val_count(cfg.synthetic_size, cfg.val_fraction)  # an independent set as large as val
        test = _synthetic(n_test, cfg, stream=2 * cfg.seed + 1) if cfg.use_test_set else None
    else:
        loaders = {"idx": _load_idx, "fashion_mnist": _load_idx, "cifar10": _load_cifar, "cifar100": _load_cifar}
        train_pool, test = loaders.get(cfg.name, _load_image_folder)(cfg, cfg.use_test_set)
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.use_test_set:
        train, val = _shuffled(train_pool, gen), _shuffled(test, gen)
    else:
        train, val = _stratified_split(train_pool, cfg.val_fraction, gen)
    return _cap(train, cfg.num_train), _cap(val, cfg.num_val)


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


# ---------------------------------------------------------------- configuration, split, caps


def _check_config(cfg: DataConfig) -> None:
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
    if cfg.name == "synthetic":
        if not 2 <= cfg.num_classes <= MAX_SYNTHETIC_CLASSES:
            raise DataError(f"data.num_classes={cfg.num_classes!r} is not in 2..{MAX_SYNTHETIC_CLASSES}")
        if cfg.channels not in (1, 3):
            raise DataError(f"data.channels={cfg.channels!r} is not 1 or 3")
        if cfg.synthetic_size < 2 * cfg.num_classes:
            raise DataError(f"data.synthetic_size={cfg.synthetic_size!r} is too small: expected >= 2 * num_classes")


def _val_count(n: int, val_fraction: float) -> int:
    n_val = round(n * val_fraction)
    if not 0 < n_val < n:
        raise DataError(f"data.val_fraction={val_fraction!r} leaves an empty split of {n} training images")
    return n_val


def _stratified_split(pool: ImageSet, val_fraction: float, gen: torch.Generator) -> tuple[ImageSet, ImageSet]:
    n, n_val = len(pool), _val_count(len(pool), val_fraction)
    order = torch.randperm(n, generator=gen)
    order = order[torch.argsort(pool.labels[order], stable=True)]  # classes contiguous, random within a class
    # Every (n / n_val)-th image of that order goes to val: each class gives its share, give or take one.
    step = torch.arange(n + 1) * n_val // n
    is_val = step[1:] != step[:-1]
    return _shuffled(pool.subset(order[~is_val]), gen), _shuffled(pool.subset(order[is_val]), gen)


def _shuffled(images: ImageSet, gen: torch.Generator) -> ImageSet:
    return images.subset(torch.randperm(len(images), generator=gen))  # so that a cap keeps a random subset


def _cap(images: ImageSet, cap: Optional[int]) -> ImageSet:
    return images if cap is None or cap >= len(images) else images.subset(torch.arange(cap))


# ---------------------------------------------------------------- synthetic


def _synthetic(n: int, cfg: DataConfig, stream: int, chunk: int = 500) -> ImageSet:
    gen = torch.Generator().manual_seed(stream)
    labels = (torch.arange(n) % cfg.num_classes)[torch.randperm(n, generator=gen)]  # exactly balanced
    images = torch.empty(n, cfg.channels, cfg.native_size, cfg.native_size, dtype=torch.uint8)
    for start in range(0, n, chunk):
        rgb = _render(labels[start : start + chunk], cfg.native_size, gen)
        pixels = rgb.mean(1, keepdim=True) if cfg.channels == 1 else rgb
        images[start : start + chunk] = pixels.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return ImageSet(images, labels, cfg.num_classes, "synthetic")


def _shape_distance(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (in object radii, < 0 inside) to a shape, at object coordinates u, v."""
    if shape == 0:  # disc
        return torch.hypot(u, v) - 1
    if shape == 1:  # square
        return torch.maximum(u.abs(), v.abs()) - 0.8
    if shape == 2:  # equilateral triangle, apothem 0.62
        sides = [u * math.cos(a) + v * math.sin(a) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
        return torch.maximum(torch.maximum(sides[0], sides[1]), sides[2]) - 0.62
    if shape == 3:  # ring from radius 0.5 to 1
        return (torch.hypot(u, v) - 0.75).abs() - 0.25
    u, v = u.abs(), v.abs()  # cross of two 2 x 0.6 bars
    return torch.minimum(torch.maximum(u - 0.3, v - 1), torch.maximum(v - 0.3, u - 1))


def _square_wave(phase: torch.Tensor) -> torch.Tensor:
    return (0.5 + 2 * torch.sin(phase)).clamp_(0, 1)  # sharp stripes with a soft edge against aliasing


def _texture(texture: int, along: torch.Tensor, across: torch.Tensor, period, phase) -> torch.Tensor:
    """Pattern in [0, 1] at offsets (along, across) in px from the object centre."""
    if texture == 1:  # stripes
        return _square_wave(along * (2 * math.pi / period) + phase)
    if texture == 2:  # checker: sin(a) sin(b) at period p * sqrt(2) has the spatial frequency of the stripes
        k = 2 * math.pi / (period * math.sqrt(2))
        return (0.5 + 2 * torch.sin(along * k + phase) * torch.sin(across * k)).clamp_(0, 1)
    if texture == 3:  # concentric rings
        return _square_wave(torch.hypot(along, across) * (2 * math.pi / period) + phase)
    return torch.full_like(along, 0.5)  # plain, in the mean colour: colour must not give the texture away


def _render(labels: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Float RGB images (B, 3, size, size), roughly in [0, 1], of the classes in ``labels``."""
    b, px = len(labels), size / 64  # lengths are given in pixels of a 64 px image

    def uniform(low, high, *shape):  # one draw per image, shaped to broadcast over (B, [3,] H, W)
        return low + (high - low) * torch.rand(b, *shape, 1, 1, generator=gen)

    def rotate(dx, dy, angle):  # offsets along and across the direction ``angle``
        cos, sin = angle.cos(), angle.sin()
        return dx * cos + dy * sin, dy * cos - dx * sin

    def fine_period():
        return uniform(3.0, 4.5) * px

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)

    # Background: a 4x4 grid of random colours, smoothly interpolated (gradients and blotches at object scale,
    # so colour edges are not object edges); as a matrix product, which is much faster than F.interpolate.
    centres = (torch.arange(4) + 0.5) * size / 4
    weights = torch.exp(-(((coords[:, None] - centres) / (size / 4)) ** 2))
    weights /= weights.sum(1, keepdim=True)
    image = weights @ torch.rand(b, 3, 4, 4, generator=gen) @ weights.T

    def draw_capsule(front: bool) -> None:
        """A distractor: a line segment with round ends, from a dot to a bar; if absent, moved off the image."""
        present = torch.rand(b, 1, 1, generator=gen) < (0.25 if front else 0.5)
        cx, cy = torch.where(present, uniform(0, size), -1e4), uniform(0, size)
        half_length, half_width = uniform(0, 10 * px), uniform(0.75, 2.0 if front else 3.0) * px
        along, across = rotate(x - cx, y - cy, uniform(0, 2 * math.pi))
        distance = torch.hypot((along.abs() - half_length).clamp_(min=0), across)
        alpha = (0.5 + half_width - distance).clamp_(0, 1)[:, None]
        image.lerp_(uniform(0, 1, 3), alpha)
        if not front:  # some are striped, so that a fine texture alone does not mean "textured class"
            s = torch.nonzero(torch.rand(b, generator=gen) < 0.4)[:, 0]
            stripes = _square_wave(along[s] * (2 * math.pi / fine_period()[s]) + uniform(0, 2 * math.pi)[s])
            image[s] = image[s].lerp_(uniform(0, 1, 3)[s], alpha[s] * stripes[:, None])

    for _ in range(2):
        draw_capsule(front=False)

    # The object: its shape gives the silhouette, its texture the fine pattern inside.
    shape_ids, texture_ids = (labels // 2) % len(SHAPES), 2 * (labels // 10) + labels % 2
    cx, cy = uniform(0.3, 0.7) * size, uniform(0.3, 0.7) * size
    radius, stretch = uniform(0.2, 0.3) * size, torch.exp(uniform(-0.2, 0.2))
    turn, texture_turn, phase = (uniform(0, 2 * math.pi) for _ in range(3))
    period = fine_period()
    dx, dy = x - cx, y - cy
    alpha, pattern = torch.empty(b, size, size), torch.empty(b, size, size)
    for shape in range(len(SHAPES)):  # a loop over attribute values, vectorised over the images having them
        m = shape_ids == shape
        u, v = rotate(dx[m], dy[m], turn[m])
        distance = _shape_distance(shape, u / (radius[m] * stretch[m]), v * stretch[m] / radius[m])
        alpha[m] = (0.5 - distance * radius[m]).clamp_(0, 1)  # an antialiased edge about one pixel wide
    for texture in range(len(TEXTURES)):
        m = texture_ids == texture
        pattern[m] = _texture(texture, *rotate(dx[m], dy[m], texture_turn[m]), period[m], phase[m])
    base = uniform(0, 1, 3)
    shift = uniform(0.3, 0.6, 1) * torch.where(base.mean(1, keepdim=True) > 0.5, -1.0, 1.0)
    second = (base + shift + uniform(-0.1, 0.1, 3)).clamp_(0, 1)  # contrasting, so the texture shows
    image.lerp_(torch.lerp(base, second, pattern[:, None]), alpha[:, None])
    draw_capsule(front=True)  # an occluder, half of the time

    noise = torch.rand(b, 1, size, size, generator=gen).sub_(0.5)  # uniform grey noise, std 0.03..0.06
    return image.add_(noise.mul_(uniform(0.1, 0.2, 1)))


# ---------------------------------------------------------------- real formats


def _root(cfg: DataConfig, expected: str) -> Path:
    root = cfg.root or (FASHION_MNIST_ROOT if cfg.name == "fashion_mnist" else None)
    if root is None:
        raise DataError(f"data.root is not set: data.name={cfg.name!r} needs a folder with {expected}")
    if not Path(root).is_dir():
        raise DataError(f"data.root={root!r} is not a folder: expected one with {expected}")
    return Path(root)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _load_idx(cfg: DataConfig, want_test: bool) -> tuple[ImageSet, Optional[ImageSet]]:
    root = _root(cfg, "MNIST/Fashion-MNIST IDX files")

    def read(prefix: str) -> ImageSet:
        paths = []
        for stem in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
            found = [p for p in (root / stem, root / f"{stem}.gz") if p.is_file()]  # plain first: no gunzip
            if not found:
                raise DataError(f"data.root={str(root)!r} has no {stem}[.gz]: expected MNIST/Fashion-MNIST IDX files")
            paths.append(found[0])
        images, labels = _read_idx(paths[0], 0x803), _read_idx(paths[1], 0x801)
        if len(images) != len(labels):
            raise DataError(f"{paths[1]}: {len(labels)} labels for {len(images)} images: expected equal counts")
        labels = torch.from_numpy(labels.astype(np.int64))
        num_classes = int(labels.max()) + 1 if len(labels) else 0
        return ImageSet(torch.from_numpy(images.copy()).unsqueeze(1), labels, num_classes, cfg.name)

    train, test = read("train"), read("t10k") if want_test else None
    num_classes = max(train.num_classes, test.num_classes if test else 0)
    return replace(train, num_classes=num_classes), test and replace(test, num_classes=num_classes)


def _read_idx(path: Path, magic: int) -> np.ndarray:
    kind = "images" if magic == 0x803 else "labels"
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read ({_one_line(error)}): expected a gzipped IDX {kind} file") from None
    found = int.from_bytes(raw[:4], "big")
    if len(raw) < 4 or found != magic:  # the magic also encodes: unsigned bytes, 3 or 1 dimensions
        raise DataError(f"{path}: magic number 0x{found:08x} is not 0x{magic:08x}: expected an IDX {kind} file")
    header = 4 + 4 * (magic & 0xFF)
    if len(raw) < header:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, less than the {header}-byte IDX {kind} header")
    dims = [int(d) for d in np.frombuffer(raw[4:header], ">u4")]
    if len(raw) - header < math.prod(dims):
        found = f"header says {dims} ({math.prod(dims)} bytes) but only {len(raw) - header} follow"
        raise DataError(f"{path}: truncated: {found}")
    return np.frombuffer(raw, np.uint8, count=math.prod(dims), offset=header).reshape(dims)


_CIFAR = {  # name: (sub-folder, training batches, test batches, label key, classes)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles containers and numpy arrays only, so that a data file cannot run code."""

    allowed = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
        (f"numpy.{core}.{module}", name)  # numpy 1 pickles name numpy.core, numpy 2 numpy._core
        for core in ("core", "_core")
        for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))
    }

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"refers to {module}.{name}")
        return super().find_class(module, name)


def _load_cifar(cfg: DataConfig, want_test: bool) -> tuple[ImageSet, Optional[ImageSet]]:
    sub, train_files, test_files, label_key, num_classes = _CIFAR[cfg.name]
    root = _root(cfg, f"the {cfg.name} python batches")
    folder = root / sub if (root / sub).is_dir() else root
    if not (folder / train_files[0]).is_file():
        missing = f"{train_files[0]} (nor {sub}/{train_files[0]})"
        raise DataError(f"data.root={cfg.root!r} has no {missing}: expected the {cfg.name} python pickle batches")

    def read(files: list[str]) -> ImageSet:
        images, labels = zip(*(_read_cifar_batch(folder / file, label_key, cfg.name, num_classes) for file in files))
        return ImageSet(torch.cat(images), torch.cat(labels), num_classes, cfg.name)

    return read(train_files), read(test_files) if want_test else None


def _read_cifar_batch(path: Path, label_key: str, name: str, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    expected = f"expected a {name} pickle dict with b'data' uint8 (N, 3072) and b'{label_key}'"
    if not path.is_file():
        raise DataError(f"{path} is missing: {expected}")
    try:
        with open(path, "rb") as file:
            batch = _ArraysOnlyUnpickler(file, encoding="bytes").load()
    except Exception as error:  # whatever fails, the file is not a batch
        raise DataError(f"{path}: cannot unpickle ({_one_line(error)}): {expected}") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: holds a {type(batch).__name__}: {expected}")
    batch = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    if "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: keys {sorted(batch)} lack 'data' or {label_key!r}: {expected}")
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        found = f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}"
        raise DataError(f"{path}: 'data' is {found}: {expected}")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: {labels.size} {label_key} for {len(data)} images: {expected}")
    if len(labels) and not 0 <= labels.min() <= labels.max() < num_classes:
        raise DataError(f"{path}: {label_key} span {labels.min()}..{labels.max()}: expected 0..{num_classes - 1}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels.astype(np.int64))


def _load_image_folder(cfg: DataConfig, want_test: bool) -> tuple[ImageSet, Optional[ImageSet]]:
    root = _root(cfg, "one sub-folder of images per class")
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = _sub_folders(train_dir)
    if not classes:
        expected = "root/<class>/<images> or root/train/<class>/<images>"
        raise DataError(f"data.root={cfg.root!r} has no class sub-folders: expected {expected}")
    train = _read_image_folder(train_dir, classes, classes, cfg.native_size)
    if not want_test:
        return train, None
    test_dir = next((root / d for d in ("val", "test") if train_dir != root and (root / d).is_dir()), None)
    if test_dir is None:
        raise DataError(f"data.use_test_set=True but data.root={cfg.root!r} has no train/ with val/ or test/ beside it")
    test_classes = _sub_folders(test_dir)
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise DataError(f"{test_dir} has classes {unknown} that {train_dir} lacks: expected some of {classes}")
    return train, _read_image_folder(test_dir, test_classes, classes, cfg.native_size)


def _sub_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_image_folder(folder: Path, classes: list[str], all_classes: list[str], size: int) -> ImageSet:
    from PIL import Image, ImageOps  # only this format needs Pillow

    images, labels = [], []
    for name in classes:
        files = sorted(p for p in (folder / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"class folder {folder / name} has no image files: expected {', '.join(IMAGE_SUFFIXES)}")
        for path in files:
            try:
                with Image.open(path) as image:  # centre crop to a square, then resize: keeps the aspect ratio
                    image = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BILINEAR)
            except (OSError, ValueError, Image.DecompressionBombError) as error:
                raise DataError(f"{path}: Pillow cannot read it ({_one_line(error)})") from None
            images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
            labels.append(all_classes.index(name))
    return ImageSet(torch.stack(images), torch.tensor(labels), len(all_classes), "image_folder")
