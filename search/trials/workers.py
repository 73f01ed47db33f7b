"""Local parallel workers: `search.workers=N` is the coordinator plus N - 1 worker processes.

The coordinator enqueues the candidates first, then starts the workers and works itself; every
process claims queued trials from the shared journal (or PostgreSQL) storage, so each candidate
runs once. Workers are spawned (not forked: torch and open storages do not survive a fork) and
get the resolved config, so they measure nothing again and write no files but the log.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time

import torch
from omegaconf import OmegaConf

from search.trials.context import cpu_cores, threads_per_process


ACTIVATION_COPIES = 6  # a training batch's activations are held about this many times over (float32): backward's
# saved tensors, their gradients, the allocator's slack. Checked against two measured peaks: the default search
# (1.61 GiB; its 45 px candidate: 621k activations an image at batch 64, 0.56 GiB held with the data loaded)
# is estimated at 1.67 GiB, Fig. 8 (5.9 GB; its 115 px point: 2.63M activations) at 6.2 GB
ORPHAN_POLL_SECONDS = 1.0  # how often a local worker checks that its coordinator is alive
UNKNOWN_TRAINING = 2**30  # bytes, for candidates not counted up front (search.space=shares)


def training_bytes(records: list[dict], batch_size: int, images: int, channels: int) -> int:
    """What one training adds to a process that holds the data, for the largest of `records`: the
    `images` (both splits) resized to its resolution in float32, and its batch's activations."""
    sizes = [4 * (images * channels * r["resolution"] ** 2 + ACTIVATION_COPIES * batch_size * r["activations"])
             for r in records if r.get("activations") and r["activations"] == r["activations"]]  # not NaN
    return int(max(sizes, default=UNKNOWN_TRAINING))  # counts read back from a CSV may be floats


def auto_count(cores: int, threads: int, gpus: int, storage_kind: str, trials: int,
               memory: int | None, per_process: int | None) -> int:
    """How many processes search.workers=0 runs, the coordinator included. SQLite: one, its only
    writer. CUDA: one per GPU. CPU: one per `threads` cores (train.threads, 0 counting as 1, since
    two one-thread trainings finish 1.7x sooner than one of two threads on these small tensors), at
    most as many as `memory` (what this process holds plus what is available) fits at `per_process`
    bytes each; never more than `trials`, the trials there are to claim."""
    if storage_kind == "sqlite":
        return 1
    count = gpus or max(1, cores // max(1, threads))
    if not gpus and memory is not None and per_process:
        count = min(count, memory // per_process)
    return max(1, min(count, trials))


def resolve_auto(cfg, records: list[dict], splits, trials: int) -> str | None:
    """Set search.workers=0 (auto) to a count for this machine (auto_count), for the candidate
    `records` on the loaded `splits`; returns why, for the log, or None where search.workers was
    set by hand."""
    if cfg.search.workers != 0:
        return None
    from search.memory import available_bytes, resident_bytes
    from search.device import resolve_device

    gpus = torch.cuda.device_count() if resolve_device(cfg.train.device).type == "cuda" else 0
    held, free = resident_bytes(), available_bytes()
    train, val = splits
    added = training_bytes(records, cfg.train.batch_size, len(train.images) + len(val.images), train.channels)
    per_process = None if held is None else held + added
    memory = None if held is None or free is None else held + free
    cores = cpu_cores()
    cfg.search.workers = auto_count(cores, cfg.train.threads, gpus, cfg.storage.kind, trials, memory, per_process)
    machine = f"{gpus} GPU(s)" if gpus else f"{cores} core(s)"
    if memory and per_process and not gpus:
        machine += f", memory for {memory // per_process} at about {per_process / 2**30:.1f} GiB each"
    return f"search.workers=0 (auto): {cfg.search.workers} process(es) on {machine}, storage {cfg.storage.kind}"


class WorkerError(RuntimeError):
    """A worker process died abnormally (its candidate was re-run by the others)."""


def start(cfg, total: int, ranges: dict, study_name: str | None = None, pruner: str | None = None,
          timeout: float | None = None) -> list[multiprocessing.Process]:
    """Start search.workers - 1 worker processes on the study of `cfg` (already enqueued);
    `ranges` are the Optuna param ranges of its candidates; `study_name` and `pruner` as in
    `open_context` (search.fidelity's workers open its second study); each claims no new
    candidate `timeout` seconds after it started (None: no limit)."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved["search"].update(role="worker", workers=1)
    resolved["train"]["threads"] = threads_per_process(cfg)
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_worker_main, args=(resolved, total, ranges, k, study_name, pruner, timeout), name=f"worker-{k}")
        for k in range(1, cfg.search.workers)
    ]
    for p in procs:
        p.start()
    return procs


def wait(procs: list[multiprocessing.Process]) -> list[str]:
    """Wait for every worker; returns a description of each that died abnormally."""
    died = []
    for p in procs:
        p.join()
        if p.exitcode:
            how = f"killed by {signal.Signals(-p.exitcode).name}" if p.exitcode < 0 else f"exit code {p.exitcode}"
            died.append(f"{p.name} (pid {p.pid}) {how}")
    return died


def raise_if_died(died: list[str]) -> None:
    if died:
        raise WorkerError(f"{'; '.join(died)}: its interrupted candidate was re-run; the results are complete")


def _worker_main(resolved: dict, total: int, ranges: dict, index: int, study_name: str | None,
                 pruner: str | None, timeout: float | None) -> None:
    """Entry point of spawned worker `index` (the coordinator is 0): score queued candidates until none is left."""
    os.environ["TQDM_DISABLE"] = "1"  # one progress display per terminal: the coordinator's
    from search.trials.context import open_context
    from search.trials.loop import work

    logging.basicConfig(level=logging.INFO, format=f"[%(asctime)s][{multiprocessing.current_process().name}] %(message)s")
    coordinator, orphaned = multiprocessing.parent_process().pid, stop_with_parent()
    deadline = None if timeout is None else time.perf_counter() + timeout
    try:
        context = open_context(OmegaConf.create(resolved), ranges, worker=index, study_name=study_name, pruner=pruner)
        work(context, total, deadline)
    except KeyboardInterrupt:
        if not orphaned.is_set():
            raise
        logging.getLogger("search").warning("the coordinator (pid %d) is gone: this worker stops, its candidate "
                                            "queued again; the same command resumes the search", coordinator)


def stop_with_parent() -> threading.Event:
    """In a spawned process: interrupt it as Ctrl-C does once its parent is gone. A local worker belongs
    to its coordinator's run; when the coordinator dies without a Ctrl-C that reaches both (kill -9, a
    scheduler's time limit), its candidate goes back to the queue, instead of a worker training on
    alone beside the next run. The event returned tells that interrupt from a real Ctrl-C."""
    parent, orphaned = multiprocessing.parent_process().pid, threading.Event()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # inherited by a background job (`... &`): honour it here
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch():
        while os.getppid() == parent:
            time.sleep(ORPHAN_POLL_SECONDS)
        orphaned.set()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()
    return orphaned
