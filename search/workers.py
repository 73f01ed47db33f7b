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

from omegaconf import OmegaConf


class WorkerError(RuntimeError):
    """A worker process died abnormally (its candidate was re-run by the others)."""


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_process(cfg) -> int:
    """train.threads when set, else the cores divided among the search.workers processes."""
    return cfg.train.threads or max(1, cpu_cores() // cfg.search.workers)


def start(cfg, total: int, params: dict) -> list[multiprocessing.Process]:
    """Start search.workers - 1 worker processes on the study of `cfg` (already enqueued);
    `params` are the Optuna param ranges of its candidates."""
    spec = OmegaConf.to_container(cfg, resolve=True)
    spec["search"].update(role="worker", workers=1)
    spec["train"]["threads"] = threads_per_process(cfg)
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=_worker_main, args=(spec, total, params), name=f"worker-{k}")
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


def _worker_main(spec: dict, total: int, params: dict) -> None:
    """Entry point of a spawned worker: score queued candidates until none is left."""
    os.environ["TQDM_DISABLE"] = "1"  # one progress display per terminal: the coordinator's
    import torch

    from search import candidates as cands
    from search import runner
    from search import study as st
    from search.proxy import resolve_device

    cfg = OmegaConf.create(spec)
    torch.set_num_threads(cfg.train.threads)
    logging.basicConfig(level=logging.INFO, format=f"[%(asctime)s][{multiprocessing.current_process().name}] %(message)s")
    run_dir = runner.run_dir_of(cfg)
    runner._log_to(run_dir / "search.log")  # noqa: SLF001
    train_split, val_split = runner.load_data(cfg)
    base = cands.ProxyBase(
        cfg.base.name, cfg.base.variant, cfg.base.depth, cfg.base.width, cfg.base.resolution,
        train_split.num_classes, train_split.channels, cfg.base.resolution_divisor,
    )
    ctx = runner.Context(cfg, base, params, train_split, val_split, resolve_device(cfg.train.device))
    storage = st.make_storage(cfg, run_dir)
    s = cfg.search
    pruner = st.make_pruner(s.pruner, s.pruner_startup_trials, cfg.train.epochs, s.pruner_warmup_epochs)
    runner.work(ctx, st.open_study(storage, cfg.name, pruner), storage, total)
