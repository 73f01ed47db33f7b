"""An image folder at real size: decode rate, the second load from the cache, and peak memory.

    python bench/image_folder.py [--images 100000] [--size 64] [--stored 64]

Writes a folder of --images random PNGs (--size px, 10 classes) under a temporary directory, then
runs `load_splits` for it in fresh processes: the first decodes every file into the uint8 cache
(search/data/files.py), the second memory-maps that cache. Prints each one's wall time, the decode
rate, the ratio of the two times and each process's peak RSS against the uint8 data size
(images x 3 x stored x stored bytes), counted above the RSS of the process once its imports are
done. Goals: second load >= 10x faster, peak RSS <= 1.5x the data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

LOAD = """
import json, re, sys, time
sys.path.insert(0, {root!r})
from search.data import DataConfig, load_splits

def memory(key):  # VmRSS: resident now; VmHWM: the high-water mark
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024

open("/proc/self/clear_refs", "w").write("5")  # the mark restarts here: importing torch peaks higher than it stays
baseline = memory("VmRSS")  # the interpreter, torch and numpy
start = time.perf_counter()
train, val = load_splits(DataConfig(name="image_folder", root={folder!r}, native_size={stored}, cache_dir={cache!r}))
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, images=len(train) + len(val), peak_rss=memory("VmHWM"), baseline=baseline)))
"""


def write_folder(folder: Path, images: int, size: int) -> float:
    from PIL import Image

    start, rng = time.perf_counter(), np.random.default_rng(0)
    for i in range(images):
        label_dir = folder / f"class{i % 10}"
        label_dir.mkdir(parents=True, exist_ok=True)
        # smooth random images: PNG files of a realistic size, not incompressible noise
        small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR).save(label_dir / f"{i}.png")
    return time.perf_counter() - start


def load(folder: Path, stored: int, cache: Path) -> dict:
    code = LOAD.format(root=str(ROOT), folder=str(folder), stored=stored, cache=str(cache))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=64, help="side of the generated files")
    parser.add_argument("--stored", type=int, default=64, help="data.native_size: the side in the cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="image-folder-bench-") as tmp:
        folder, cache = Path(tmp) / "images", Path(tmp) / "cache"
        written = write_folder(folder, args.images, args.size)
        data_bytes = args.images * 3 * args.stored**2
        first, second = load(folder, args.stored, cache), load(folder, args.stored, cache)
    print(f"{args.images} PNG files of {args.size} px written in {written:.0f} s; uint8 data at {args.stored} px: "
          f"{data_bytes / 2**20:.0f} MiB")
    for name, run in (("first load (decode)", first), ("second load (cache)", second)):
        added = run["peak_rss"] - run["baseline"]
        print(f"{name:<20} {run['seconds']:8.2f} s  peak RSS {run['peak_rss'] / 2**20:6.0f} MiB, of which "
              f"{added / 2**20:6.0f} MiB above the process's start = {added / data_bytes:.2f}x the data")
    print(f"decode rate: {args.images / first['seconds']:.0f} images/s;  second load "
          f"{first['seconds'] / second['seconds']:.0f}x faster (goal >= 10x); peak RSS goal <= 1.5x the data")


if __name__ == "__main__":
    main()
