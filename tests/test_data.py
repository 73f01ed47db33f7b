"""Tests for search/data/ on small files written in each real format."""

import gzip
import json
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from search.data import FASHION_MNIST_ROOT, DataConfig, DataError, ImageSet, load_splits, resize_images
from search.data import files


# ---------------------------------------------------------------- writers for the real formats


def numbered_images(n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Random uint8 images whose first two bytes encode their index, so any image can be traced back."""
    images = np.random.default_rng(n).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = images.reshape(n, -1)
    flat[:, 0], flat[:, 1] = np.arange(n) // 256, np.arange(n) % 256
    return images


def image_index(images: torch.Tensor) -> torch.Tensor:
    flat = images.flatten(1).long()
    return flat[:, 0] * 256 + flat[:, 1]


def write_idx(path: Path, array: np.ndarray, magic: int, gz: bool) -> None:
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_idx(root: Path, n_train: int = 40, n_test: int = 12, gz: bool = True) -> Path:
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", numbered_images(n, (28, 28)), 0x803, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", (np.arange(n) % 10).astype(np.uint8), 0x801, gz)
    return root


def write_cifar_batch(path: Path, n: int, label_key: bytes, num_classes: int) -> None:
    labels = [i % num_classes for i in range(n)]
    batch = {b"data": numbered_images(n, (3072,)), label_key: labels, b"batch_label": b"x"}
    with open(path, "wb") as file:
        pickle.dump(batch, file)


def make_cifar10(root: Path, per_batch: int = 6) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_batch(folder / name, per_batch, b"labels", 10)
    return root


def make_image_folder(root: Path, classes=("cat", "dog", "eel"), per_class: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((20, 30, 3), 40 * label + i, dtype=np.uint8)  # the colour encodes label and index
            Image.fromarray(pixels).save(root / name / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(root / name / "grey.png")
    return root


# ---------------------------------------------------------------- synthetic


def small_synthetic(**overrides) -> DataConfig:
    return DataConfig(**{"synthetic_size": 200, "native_size": 32, **overrides})


def test_synthetic_shapes_dtypes_balance():
    train, val = load_splits(small_synthetic())
    assert (len(train), len(val)) == (180, 20)
    assert train.images.shape == (180, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64
    assert (train.channels, train.native_size, train.num_classes) == (3, 32, 10)
    assert torch.bincount(train.labels).tolist() == [18] * 10  # stratified split of an exactly balanced set
    assert torch.bincount(val.labels).tolist() == [2] * 10
    assert train.images.float().std() > 30  # not blank


def test_synthetic_default_size_is_64():
    train, _ = load_splits(DataConfig(synthetic_size=20, num_classes=2))
    assert train.images.shape[1:] == (3, 64, 64)


def test_synthetic_is_deterministic_and_seeded():
    first, second, other = (load_splits(small_synthetic(seed=s)) for s in (0, 0, 1))
    for a, b in zip(first, second):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(first[0].images, other[0].images)


def test_synthetic_grey_and_more_classes():
    train, val = load_splits(small_synthetic(channels=1, num_classes=20, synthetic_size=400))
    assert train.images.shape[1] == 1 and train.num_classes == 20
    assert set(train.labels.tolist()) == set(range(20)) == set(val.labels.tolist())


def test_synthetic_test_set_is_separate():
    train, val = load_splits(small_synthetic())
    full_train, test = load_splits(small_synthetic(use_test_set=True))
    assert (len(full_train), len(test)) == (200, 20)
    assert as_set(full_train.images) == as_set(train.images) | as_set(val.images)  # the same training set
    assert not as_set(test.images) & as_set(full_train.images)


def as_set(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


@pytest.fixture(scope="module")
def synthetic_1k() -> ImageSet:
    return load_splits(DataConfig(synthetic_size=1000, val_fraction=0.2, seed=5))


def test_synthetic_pixels_alone_do_not_solve_it(synthetic_1k):
    train, val = synthetic_1k
    x_train, x_val = resize_images(train.images, 16).flatten(1), resize_images(val.images, 16).flatten(1)
    means = torch.stack([x_train[train.labels == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(x_val, means).argmin(1) == val.labels).float().mean().item()
    assert accuracy < 0.5  # nearest class mean on 16 px pixels (chance: 0.1)


def test_synthetic_fine_texture_needs_resolution(synthetic_1k):
    """Odd classes are textured: that shows as high-frequency energy at 64 px and is gone at 16 px."""
    images, textured = synthetic_1k[0].images, synthetic_1k[0].labels % 2 == 1

    def separation(size: int) -> float:  # probability that a textured image has more energy than a plain one
        grey = resize_images(images, size).mean(1, keepdim=True)
        energy = (grey - F.avg_pool2d(grey, 3, 1, 1, count_include_pad=False)).pow(2).mean((1, 2, 3))
        return (energy[textured][:, None] > energy[~textured][None]).float().mean().item()

    assert separation(64) > 0.62
    assert 0.4 < separation(16) < 0.6


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    root = make_idx(tmp_path, gz=gz)
    train, val = load_splits(DataConfig(name="idx", root=str(root), val_fraction=0.25))
    assert (len(train), len(val)) == (30, 10)
    assert train.images.shape == (30, 1, 28, 28) and train.images.dtype == torch.uint8 and train.num_classes == 10
    indices = torch.cat([image_index(train.images), image_index(val.images)])
    assert sorted(indices.tolist()) == list(range(40))
    assert torch.equal(torch.cat([train.labels, val.labels]), indices % 10)
    assert torch.bincount(val.labels).tolist() == [1] * 10  # stratified


def test_idx_test_set_and_caps(tmp_path):
    root = make_idx(tmp_path)
    train, val = load_splits(DataConfig(name="idx", root=str(root), use_test_set=True))
    assert (len(train), len(val)) == (40, 12)
    assert sorted(image_index(val.images).tolist()) == list(range(12))
    assert torch.equal(val.labels, image_index(val.images) % 10)
    train, val = load_splits(DataConfig(name="idx", root=str(root), num_train=7, num_val=100))
    assert (len(train), len(val)) == (7, 4)


def test_idx_prefers_plain_file_and_takes_classes_from_both_splits(tmp_path):
    root = make_idx(tmp_path, gz=False)
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"never read")
    write_idx(root / "t10k-labels-idx1-ubyte", np.full(12, 11, np.uint8), 0x801, gz=False)
    train, test = load_splits(DataConfig(name="idx", root=str(root), use_test_set=True))
    assert train.num_classes == test.num_classes == 12


def test_idx_is_deterministic(tmp_path):
    cfg = DataConfig(name="idx", root=str(make_idx(tmp_path)), num_train=20)
    (a, b), (c, d) = load_splits(cfg), load_splits(cfg)
    assert torch.equal(a.images, c.images) and torch.equal(b.labels, d.labels)


def test_idx_errors(tmp_path):
    root = make_idx(tmp_path, gz=False)
    cfg = DataConfig(name="idx", root=str(root))
    (root / "train-labels-idx1-ubyte").rename(root / "moved")
    with pytest.raises(DataError, match="has no train-labels-idx1-ubyte\\[.gz\\]"):
        load_splits(cfg)
    write_idx(root / "train-labels-idx1-ubyte", np.zeros(39, np.uint8), 0x801, gz=False)
    with pytest.raises(DataError, match="39 labels for 40 images"):
        load_splits(cfg)
    write_idx(root / "train-labels-idx1-ubyte", np.zeros(40, np.uint8), 0x803, gz=False)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: magic number 0x00000803 is not 0x00000801"):
        load_splits(cfg)
    images = root / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    (root / "train-labels-idx1-ubyte").write_bytes((root / "moved").read_bytes())
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated: header says \\[40, 28, 28\\]"):
        load_splits(cfg)
    images.write_bytes(images.read_bytes()[:10])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated: 10 bytes, less than the 16-byte"):
        load_splits(cfg)
    (root / "train-images-idx3-ubyte").unlink()
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: cannot read"):
        load_splits(cfg)


def test_root_errors(tmp_path):
    with pytest.raises(DataError, match="data.root is not set"):
        load_splits(DataConfig(name="idx"))
    with pytest.raises(DataError, match=re.escape(f"data.root='{tmp_path / 'nope'}' is not a folder")):
        load_splits(DataConfig(name="cifar10", root=str(tmp_path / "nope")))
    message = f"data.root='{tmp_path}' has no train-images-idx3-ubyte[.gz]: expected MNIST"
    with pytest.raises(DataError, match=re.escape(message)):
        load_splits(DataConfig(name="idx", root=str(tmp_path)))


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_ROOT), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    train, val = load_splits(DataConfig(name="fashion_mnist", num_train=1000, num_val=200))
    assert train.images.shape == (1000, 1, 28, 28) and val.images.shape == (200, 1, 28, 28)
    assert train.num_classes == 10 and train.images.dtype == torch.uint8


# ---------------------------------------------------------------- CIFAR


def test_cifar10_round_trip(tmp_path):
    root = make_cifar10(tmp_path)
    train, val = load_splits(DataConfig(name="cifar10", root=str(root), val_fraction=1 / 3))
    assert (len(train), len(val)) == (20, 10)
    assert train.images.shape == (20, 3, 32, 32) and train.num_classes == 10
    index = image_index(torch.cat([train.images, val.images]))  # each batch numbers its images 0..5
    assert torch.equal(torch.cat([train.labels, val.labels]), index % 10)
    train, test = load_splits(DataConfig(name="cifar10", root=str(root), use_test_set=True))
    assert (len(train), len(test)) == (30, 6)


def test_cifar100_in_root(tmp_path):
    write_cifar_batch(tmp_path / "train", 50, b"fine_labels", 100)
    write_cifar_batch(tmp_path / "test", 8, b"fine_labels", 100)
    train, test = load_splits(DataConfig(name="cifar100", root=str(tmp_path), use_test_set=True))
    assert (len(train), len(test), train.num_classes) == (50, 8, 100)
    assert torch.equal(train.labels, image_index(train.images))


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_pickle_protocols_and_numpy_1_names(tmp_path, protocol):
    """The real batches are protocol-2 pickles naming numpy.core (numpy 1); numpy 2 writes numpy._core."""
    batch = {b"data": numbered_images(3, (3072,)), b"fine_labels": [7, 8, 9], b"coarse_labels": [1, 2, 3]}
    raw = pickle.dumps(batch, protocol=protocol)
    if protocol == 2:  # its GLOBAL opcode names modules as plain text, so the name can be swapped in place
        raw = raw.replace(b"numpy._core.", b"numpy.core.")
    (tmp_path / "train").write_bytes(raw)
    train, val = load_splits(DataConfig(name="cifar100", root=str(tmp_path), val_fraction=0.34))
    assert sorted(torch.cat([train.labels, val.labels]).tolist()) == [7, 8, 9]


class RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"garbage", "data_batch_1: cannot unpickle"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "lack 'data' or 'labels'"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "'data' is uint8 \\(2, 100\\)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "1 labels for 2 images"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "labels span 0..10"),
        (pickle.dumps([1, 2]), "holds a list"),
        (pickle.dumps({b"data": RunsCode(), b"labels": []}), "refers to posix.system"),
    ],
)
def test_cifar_errors(tmp_path, content, message):
    root = make_cifar10(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_splits(DataConfig(name="cifar10", root=str(root)))


def test_cifar_missing_files(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"data.root='{tmp_path}' has no data_batch_1")):
        load_splits(DataConfig(name="cifar10", root=str(tmp_path)))
    (make_cifar10(tmp_path) / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="data_batch_4 is missing"):
        load_splits(DataConfig(name="cifar10", root=str(tmp_path)))


# ---------------------------------------------------------------- image folder


def test_image_folder_round_trip(tmp_path):
    root = make_image_folder(tmp_path)
    train, val = load_splits(DataConfig(name="image_folder", root=str(root), native_size=16, val_fraction=1 / 3))
    assert (len(train), len(val), train.num_classes) == (12, 6, 3)
    assert train.images.shape == (12, 3, 16, 16) and train.images.dtype == torch.uint8
    images, labels = torch.cat([train.images, val.images]), torch.cat([train.labels, val.labels])
    coloured = images.flatten(1).float().std(1) == 0  # the constant-colour images (not grey noise)
    assert torch.equal(images[coloured, 0, 0, 0].long() // 40, labels[coloured])  # label = folder (sorted names)
    assert coloured.sum() == 15


def test_image_folder_train_val(tmp_path):
    make_image_folder(tmp_path / "train")
    make_image_folder(tmp_path / "val", classes=("dog",), per_class=2)
    cfg = DataConfig(name="image_folder", root=str(tmp_path), native_size=8, use_test_set=True)
    train, test = load_splits(cfg)
    assert (len(train), len(test), test.num_classes) == (18, 3, 3)
    assert test.labels.tolist() == [1, 1, 1]  # "dog" keeps its training label


def test_image_folder_errors(tmp_path):
    cfg = DataConfig(name="image_folder", root=str(tmp_path))
    with pytest.raises(DataError, match="has no class sub-folders"):
        load_splits(cfg)
    make_image_folder(tmp_path)
    (tmp_path / "fox").mkdir()
    (tmp_path / "fox" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=re.escape(f"class folder {tmp_path / 'fox'} has no image files")):
        load_splits(cfg)
    (tmp_path / "fox" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'fox' / 'broken.png'}: Pillow cannot read it")):
        load_splits(cfg)
    (tmp_path / "fox" / "broken.png").unlink()
    (tmp_path / "fox" / "notes.txt").rename(tmp_path / "fox" / "fine.png")  # a text file named like an image
    with pytest.raises(DataError, match="fine.png: Pillow cannot read it"):
        load_splits(cfg)
    (tmp_path / "fox" / "fine.png").unlink()
    (tmp_path / "fox").rmdir()
    with pytest.raises(DataError, match="has no train/ with val/ or test/"):
        load_splits(DataConfig(name="image_folder", root=str(tmp_path), use_test_set=True))


# ---------------------------------------------------------------- config, resize, ImageSet


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"name": "foo"}, "data.name='foo' is not one of: synthetic, idx, fashion_mnist, cifar10, cifar100, image_folder"),
        ({"val_fraction": 0.0}, "data.val_fraction=0.0 is not in \\(0, 1\\)"),
        ({"val_fraction": 1.5}, "data.val_fraction=1.5 is not in \\(0, 1\\)"),
        ({"val_fraction": 0.001}, "data.val_fraction=0.001 leaves an empty split of 200"),
        ({"num_train": 0}, "data.num_train=0 is not a positive int"),
        ({"num_val": -3}, "data.num_val=-3 is not a positive int"),
        ({"num_classes": 21}, "data.num_classes=21 is not in 2..20"),
        ({"channels": 2}, "data.channels=2 is not 1 or 3"),
        ({"native_size": 4}, "data.native_size=4 is too small"),
        ({"synthetic_size": 5}, "data.synthetic_size=5 is too small"),
    ],
)
def test_config_errors(overrides, message):
    with pytest.raises(DataError, match=message) as info:
        load_splits(small_synthetic(**overrides))
    assert "\n" not in str(info.value)


def test_resize_images():
    images = torch.randint(0, 256, (5, 3, 20, 20), dtype=torch.uint8)
    same = resize_images(images, 20)
    assert same.dtype == torch.float32 and torch.equal(same, images.float() / 255)
    for size in (7, 48):
        out = resize_images(images, size, batch=2)  # several chunks
        assert out.shape == (5, 3, size, size) and out.dtype == torch.float32
        assert 0 <= out.min() and out.max() <= 1
    flat = torch.full((2, 1, 32, 32), 200, dtype=torch.uint8)
    assert torch.allclose(resize_images(flat, 16), torch.tensor(200 / 255))
    with pytest.raises(DataError, match="expected uint8"):
        resize_images(images.float(), 8)
    with pytest.raises(DataError, match="size=0"):
        resize_images(images, 0)


def test_image_set_checks():
    images = torch.zeros(3, 1, 8, 8, dtype=torch.uint8)
    data = ImageSet(images, torch.tensor([0, 1, 1]), 2, "x")
    assert (len(data), data.channels, data.native_size) == (3, 1, 8)
    with pytest.raises(DataError, match="2 labels for 3 images"):
        ImageSet(images, torch.tensor([0, 1]), 2, "x")
    with pytest.raises(DataError, match="labels span 0..5"):
        ImageSet(images, torch.tensor([0, 1, 5]), 2, "x")


def test_an_image_folder_is_decoded_once_then_read_from_its_cache(tmp_path):
    """5,000 images: the second load memory-maps the uint8 cache (>= 10x faster); a changed file is decoded again."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("a", "b", "c", "d")):
        (tmp_path / "pics" / name).mkdir(parents=True)
        for i in range(1250):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "pics" / name / f"{i}.png")
    cfg = DataConfig(name="image_folder", root=str(tmp_path / "pics"), native_size=12, cache_dir=str(tmp_path / "cache"))

    def timed_load():
        start = time.perf_counter()
        images, _ = files.load_image_folder(cfg, want_test=False)
        return images, time.perf_counter() - start

    first, decode_s = timed_load()
    second, cached_s = timed_load()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1 and not list((tmp_path / "cache").glob("*.partial"))
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.labels.bincount().tolist() == [1250] * 4 and first.images.shape == (5000, 3, 12, 12)
    assert decode_s >= 10 * cached_s, (decode_s, cached_s)
    pixels = np.asarray(Image.open(tmp_path / "pics" / "b" / "7.png")).transpose(2, 0, 1)
    index = 1250 + sorted(range(1250), key=lambda i: f"{i}.png").index(7)  # files are read in name order
    assert torch.equal(second.images[index], torch.from_numpy(pixels))  # 12 px stored at 12 px: unchanged

    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(tmp_path / "pics" / "b" / "7.png")
    os.utime(tmp_path / "pics" / "b" / "7.png", ns=(1, 1))  # a new modification time, whatever the clock
    third, _ = timed_load()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2 and third.images[index].sum() == 0


PEAK_OF_A_LOAD = """
import json, re, sys
from search.data import DataConfig, load_splits

def memory(key):  # VmRSS: resident now; VmHWM: the high-water mark
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

open("/proc/self/clear_refs", "w").write("5")  # the mark restarts here: importing torch peaks higher than it stays
before = memory("VmRSS")
train, val = load_splits(DataConfig(**json.loads(sys.argv[1])))
print(json.dumps([memory("VmHWM") - before, len(train), len(val)]))
"""


def test_a_cached_image_folder_loads_within_one_and_a_half_times_its_size(tmp_path):
    """5,000 images at 64 px (61 MiB of uint8): split, shuffle and cap gather from the memory-mapped
    cache without holding the file beside the copy (a plain gather peaked at 2x)."""
    rng = np.random.default_rng(0)
    for i in range(5000):
        (tmp_path / "pics" / f"c{i % 5}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "pics" / f"c{i % 5}" / f"{i}.png")
    cfg = dict(name="image_folder", root=str(tmp_path / "pics"), native_size=64, cache_dir=str(tmp_path / "cache"))
    train, val = load_splits(DataConfig(**cfg))  # decodes into the cache
    data_bytes = 5000 * 3 * 64 * 64
    for caps in ({}, {"num_train": 3000}):
        done = subprocess.run([sys.executable, "-c", PEAK_OF_A_LOAD, json.dumps({**cfg, **caps})], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).resolve().parents[1])
        added, n_train, n_val = json.loads(done.stdout.strip().splitlines()[-1])
        assert (n_train, n_val) == (caps.get("num_train", len(train)), len(val))
        assert added <= 1.5 * data_bytes, f"peak RSS rose by {added / data_bytes:.2f}x the data"
    again, _ = load_splits(DataConfig(**cfg, num_train=3000))
    assert torch.equal(again.images, train.images[:3000])  # the chunked gather keeps the shuffled order
