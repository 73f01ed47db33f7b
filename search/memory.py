"""glibc heap settings for training loops: no page-fault churn per step, memory back between trials.

By default glibc serves tensors over its (adaptive, at most 32 MB) mmap threshold with fresh
mappings and trims the heap top whenever it frees enough, so every training step faults the
same few hundred MB in again. 12 steps of the default grid's 45 px candidate, 3 interleaved
runs each: 1.5-2.1 million page faults and 6.5-8.0 s by default, 0.47-0.58 million and
6.6-7.0 s with the heap kept; the same peak memory. `release_memory()` hands the free heap
back between trials.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # not musl


_LIBC = _glibc()


def keep_heap() -> None:
    """Serve every allocation from the heap and never trim it automatically (a user's MALLOC_*
    or GLIBC_TUNABLES settings win). Large blocks still fall back to mmap where the heap cannot grow."""
    if _LIBC is not None and not any(name in os.environ for name in _USER_SETTINGS):
        _LIBC.mallopt(_M_MMAP_MAX, 0)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


def release_memory() -> None:
    """Give the heap's free pages (and the CUDA cache's free blocks) back, e.g. between trainings
    of different networks, whose shapes the caching allocator could not reuse anyway.

    No gc.collect() here: a Ctrl-C that lands in a finalizer it runs is swallowed."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def resident_bytes() -> int | None:
    """This process's resident memory now (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def available_bytes() -> int | None:
    """Memory that new processes may take without swapping: the kernel's MemAvailable, lowered to
    what a cgroup (v2) limit leaves, e.g. in a container; None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None
