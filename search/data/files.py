"""Readers of real data-set formats: MNIST IDX, CIFAR python batches, and image folders."""

import concurrent.futures
import contextlib
import gzip
import hashlib
import json
import math
import multiprocessing
import os
import pickle
import sys
import warnings
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from search.data.images import FASHION_MNIST_ROOT, DataConfig, DataError, ImageSet

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp")


def _root(cfg: DataConfig, expected: str) -> Path:
    root = cfg.root or (FASHION_MNIST_ROOT if cfg.name == "fashion_mnist" else None)
    if root is None:
        raise DataError(f"data.root is not set: data.name={cfg.name!r} needs a folder with {expected}")
    if not Path(root).is_dir():
        raise DataError(f"data.root={root!r} is not a folder: expected one with {expected}")
    return Path(root)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def load_idx(cfg: DataConfig, want_test: bool) -> tuple[ImageSet, Optional[ImageSet]]:
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


def load_cifar(cfg: DataConfig, want_test: bool) -> tuple[ImageSet, Optional[ImageSet]]:
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


def load_image_folder(cfg: DataConfig, want_test: bool) -> tuple[ImageSet, Optional[ImageSet]]:
    root = _root(cfg, "one sub-folder of images per class")
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = _sub_folders(train_dir)
    if not classes:
        expected = "root/<class>/<images> or root/train/<class>/<images>"
        raise DataError(f"data.root={cfg.root!r} has no class sub-folders: expected {expected}")
    train = _read_image_folder(train_dir, classes, classes, cfg)
    if not want_test:
        return train, None
    test_dir = next((root / d for d in ("val", "test") if train_dir != root and (root / d).is_dir()), None)
    if test_dir is None:
        raise DataError(f"data.use_test_set=True but data.root={cfg.root!r} has no train/ with val/ or test/ beside it")
    test_classes = _sub_folders(test_dir)
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:
        raise DataError(f"{test_dir} has classes {unknown} that {train_dir} lacks: expected some of {classes}")
    return train, _read_image_folder(test_dir, test_classes, classes, cfg)


def _sub_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_image_folder(folder: Path, classes: list[str], all_classes: list[str], cfg: DataConfig) -> ImageSet:
    """The folder's images at cfg.native_size, decoded once (in parallel) into a uint8 cache file that
    every later load, process and run reads (the returned set maps it; its splits read it); the labels come
    from the file list itself."""
    files, labels = [], []
    for name in classes:
        class_dir = str(folder / name)
        with os.scandir(class_dir) as entries:  # the file type comes with the listing: no stat per file
            names = sorted(e.name for e in entries if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_SUFFIXES)
        found = [os.path.join(class_dir, n) for n in names]  # strings: pathlib costs more than the listing itself
        if not found:
            raise DataError(f"class folder {folder / name} has no image files: expected {', '.join(IMAGE_SUFFIXES)}")
        files += found
        labels += [all_classes.index(name)] * len(found)
    cache = _cache_file(folder, files, cfg)
    if not cache.is_file():
        _decode_into(cache, files, cfg.native_size)
    with warnings.catch_warnings():  # read-only on purpose: the cache is shared; indexing copies
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        images = torch.from_numpy(np.load(cache, mmap_mode="r"))
    return ImageSet(images, torch.tensor(labels), len(all_classes), "image_folder", mapped_from=str(cache))


def _cache_file(folder: Path, files: list[str], cfg: DataConfig) -> Path:
    """Keyed by the folder, the stored size and every file's name, size and modification time."""
    start = len(str(folder)) + 1
    listing = [(p[start:], (st := os.stat(p)).st_size, st.st_mtime_ns) for p in files]
    key = hashlib.sha256(json.dumps([str(folder.resolve()), cfg.native_size, listing]).encode()).hexdigest()[:16]
    cache_dir = Path(cfg.cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "compound-scaling")
    return cache_dir / f"{folder.name}-{cfg.native_size}px-{key}.npy"


def _decode_into(cache: Path, files: list[str], size: int) -> None:
    """Decode every file (worker processes for large folders, a progress bar) into `cache`, atomically."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.partial")
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(files), 3, size, size))
    jobs = [(p, size) for p in files]
    processes = min(os.cpu_count() or 1, 8) if len(files) >= 2000 and _can_spawn() else 1
    try:
        try:
            _decode_all(out, jobs, processes)
        except concurrent.futures.BrokenExecutor:  # a worker died, e.g. no importable __main__ (a script on stdin)
            _decode_all(out, jobs, 1)
        out.flush()
        del out
        os.replace(partial, cache)
    finally:
        partial.unlink(missing_ok=True)


def _can_spawn() -> bool:
    """Spawned workers import __main__ again from its file: a script read from stdin has none."""
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    return main_file is None or os.path.exists(main_file)


def _decode_all(out: np.ndarray, jobs: list, processes: int) -> None:
    from tqdm import tqdm

    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) \
            if processes > 1 else contextlib.nullcontext() as pool:
        decoded = pool.map(_decode, jobs, chunksize=256) if pool else map(_decode, jobs)
        bar = tqdm(decoded, total=len(jobs), desc=f"decoding {Path(jobs[0][0]).parent.parent}", unit="img",
                   mininterval=1, leave=False, disable=None)  # None: no bar where stderr is no terminal
        for i, pixels in enumerate(bar):
            if isinstance(pixels, str):
                raise DataError(pixels)
            out[i] = pixels


def _decode(job: tuple[str, int]):
    """One image as uint8 (3, size, size): centre-cropped to a square, then resized; or the error's line."""
    from PIL import Image, ImageOps  # only this format needs Pillow

    path, size = job
    try:
        with Image.open(path) as image:
            image = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BILINEAR)
            return np.asarray(image).transpose(2, 0, 1)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"{path}: Pillow cannot read it ({_one_line(error)})"
