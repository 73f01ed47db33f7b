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
import time

from omegaconf import OmegaConf

from search.trials.context import threads_per_process


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
    deadline = None if timeout is None else time.perf_counter() + timeout
    context = open_context(OmegaConf.create(resolved), ranges, worker=index, study_name=study_name, pruner=pruner)
    work(context, total, deadline)
