"""Forward latency of each distinct network of a run, measured on this machine and cached in latency.csv.

FLOPs predict speed poorly (depthwise convs and large activations are memory-bound), so the
figures also show accuracy against what a forward pass really costs here.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pandas as pd
import torch

from models import make
from search.results.files import replace_atomic

LATENCY_FILE = "latency.csv"


def measure_latency(points: pd.DataFrame, run_dir: Path, device: str = "cpu", batch: int = 1, repeats: int = 10) -> pd.DataFrame:
    """Median forward time (ms) of each distinct network on `device`, cached in latency.csv."""
    path = Path(run_dir) / LATENCY_FILE
    cache = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["key", "device", "batch", "latency_ms"])
    known = cache[(cache.device == device) & (cache.batch == batch)]
    todo = [rec for rec in points.drop_duplicates("key").itertuples() if rec.key not in set(known.key)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one CPU thread: stable numbers even on a busy machine (several threads spin)
    try:
        rows = _measure_all(todo, device, batch, repeats)
    finally:
        torch.set_num_threads(threads)
    if rows:
        cache = pd.concat([cache, pd.DataFrame(rows)], ignore_index=True)
        replace_atomic(path, lambda tmp: cache.to_csv(tmp, index=False))
    mine = cache[(cache.device == device) & (cache.batch == batch)][["key", "latency_ms"]]
    return points.drop(columns=["latency_ms"], errors="ignore").merge(mine, on="key", how="left")


def _measure_all(todo: list, device: str, batch: int, repeats: int) -> list[dict]:
    if todo:
        _latency_ms(todo[0], device, batch, repeats)  # the first forward of a process pays one-time set-up
    return [dict(key=r.key, device=device, batch=batch, latency_ms=_latency_ms(r, device, batch, repeats)) for r in todo]


def _latency_ms(rec, device: str, batch: int, repeats: int) -> float:
    model = make(rec.base, rec.depth, rec.width, rec.variant, int(rec.num_classes), int(rec.in_channels)).to(device).eval()
    x = torch.randn(batch, int(rec.in_channels), int(rec.resolution), int(rec.resolution), device=device)
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):  # three warm-up passes (allocator, kernel selection)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= 3:
                times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 4)
