"""A run's working context, opened the same way by the coordinator and by every worker process:
threads, the run's log, the data, the proxy base, the device and the Optuna study."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch
from omegaconf import OmegaConf

from search import fingerprint, pruning, timing
from search import storage as backends
from search.validate import use_own_bases
from search.data import DataConfig, ImageSet, load_splits
from search.plan import ProxyBase
from search.device import resolve_device
from search.proxy import channel_stats, prepare
from search.record import GRID_PARAMS, SERIES_PARAMS
from search.results import log_to
from search.storage import queue
from search.trials import shares


@dataclass
class RunContext:
    """Everything a process needs to score candidates; data is resized once per resolution."""

    cfg: object
    proxy: ProxyBase
    ranges: dict  # Optuna param name -> (low, high) of the distribution every trial records
    train_split: ImageSet
    val_split: ImageSet
    device: torch.device
    storage: object
    study: optuna.Study
    stats: tuple  # the train split's channel mean and std: the normalisation of every resolution
    _prepared: tuple = (None, None)  # (resolution, (train, val)): only the latest is kept
    propose: object = None  # search.space=shares: makes the next trial when none is queued (search/trials/shares.py)

    def params_of(self, rec: dict) -> dict:
        """The Optuna params of a candidate record (what it is enqueued with)."""
        return {name: rec[name] for name in self.ranges}

    def data_at(self, resolution: int):
        """The splits at `resolution`. Only one resolution is held: keeping every one a grid
        visits costs ~200 MB at the default, and re-resizing a set takes about a second."""
        if self._prepared[0] != resolution:
            self._prepared = (None, None)  # freed before the next one is made
            with timing.phase("data_preparation"):
                splits = tuple(prepare(s, resolution, self.stats, self.device) for s in (self.train_split, self.val_split))
            self._prepared = (resolution, splits)
        return self._prepared[1]


def run_dir_of(cfg) -> Path:
    return (Path(cfg.runs_dir) / cfg.name).resolve()


def load_data(cfg) -> tuple[ImageSet, ImageSet]:
    with timing.phase("data_loading"):
        return load_splits(DataConfig(**OmegaConf.to_container(cfg.data, resolve=True)))


def optuna_ranges(records: list[dict]) -> dict[str, tuple[float, float]]:
    """Each Optuna param of these candidates with the range its distribution records."""
    names = GRID_PARAMS if all(r["series"] == "grid" for r in records) else SERIES_PARAMS
    return {n: (min(r[n] for r in records), max(r[n] for r in records)) for n in names}


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_process(cfg) -> int:
    """train.threads when set, else the cores divided among the search.workers processes."""
    return cfg.train.threads or max(1, cpu_cores() // cfg.search.workers)


def open_context(cfg, ranges: dict, splits: tuple[ImageSet, ImageSet] | None = None, worker: int = 0,
                 study_name: str | None = None, pruner: str | None = None) -> RunContext:
    """Open the run of `cfg` for training: the coordinator (worker 0) passes the splits it already
    loaded; local worker k trains on GPU k mod the GPU count when train.device is CUDA.
    `study_name` and `pruner` default to the search's (cfg.name, search.pruner). The search's
    study must have been scored with cfg's score settings, or has them recorded now
    (search/fingerprint.py); another study (search/fidelity.py's, with its own budgets) is not checked."""
    if cfg.train.threads or cfg.search.workers > 1:
        torch.set_num_threads(threads_per_process(cfg))
    use_own_bases(cfg)  # a spawned worker's own registry
    run_dir = run_dir_of(cfg)
    log_to(run_dir / "search.log")
    train_split, val_split = splits or load_data(cfg)
    proxy = ProxyBase.of(cfg.base, train_split.num_classes, train_split.channels)
    storage = backends.make_storage(cfg, run_dir)
    study = _open_study(cfg, storage, study_name or cfg.name, pruner or cfg.search.pruner)
    if study_name is None:
        fingerprint.adopt(study, fingerprint.score_settings(cfg))
    with timing.phase("data_preparation"):
        stats = channel_stats(train_split.images)
    device = resolve_device(cfg.train.device, worker)
    ctx = RunContext(cfg, proxy, ranges, train_split, val_split, device, storage, study, stats)
    if study_name is None and cfg.search.space == "shares":
        study.sampler = shares.sampler(cfg, worker)
        ctx.propose = shares.proposer(ctx)
    return ctx


def reopen(ctx: RunContext, study_name: str, ranges: dict, pruner: str) -> RunContext:
    """`ctx`'s run (data, statistics, device, storage) working on another study, measuring nothing
    again; it takes over `ctx`'s prepared resolution, as a process keeps one. (Measuring the
    statistics again on a heap fragmented by training raised the default search's peak memory
    from 1.5 to 2.1 GB when search/confirm.py opened its study with open_context.)"""
    study = _open_study(ctx.cfg, ctx.storage, study_name, pruner)
    other = replace(ctx, ranges=ranges, study=study, propose=None)
    ctx._prepared = (None, None)
    return other


def _open_study(cfg, storage, name: str, pruner: str) -> optuna.Study:
    s = cfg.search
    return queue.open_study(storage, name, pruning.make_pruner(pruner, s.pruner_startup_trials, cfg.train.epochs,
                                                               s.pruner_warmup_epochs, s.pruner_min_agreement))
