"""One compound-scaling search, from a composed config to the files in runs/<name>/.

The phases, each in its own module: plan the candidates (search/plan) and hand them off in
candidates.csv; launch the trial loop on the study (search/trials, search/storage); collect
trials.csv and best.yaml (search/results).
"""

from __future__ import annotations

import logging
import time

import pandas as pd
from omegaconf import OmegaConf

from search import checkpoint, confirm, fingerprint, storage, timing
from search.config import ConfigError
from search.plan import ProxyBase, plan_candidates, unique_points
from search.plan.shares import RANGES
from search.record import CANDIDATE_COLUMNS, GRID_PARAMS
from search.results import best_summary, log_to, sampled_candidates, write_csv, write_yaml
from search.results.summary import chance_sentence, print_plan, print_results
from search.storage import queue
from search.trials import workers
from search.trials.context import load_data, open_context, optuna_ranges, run_dir_of
from search.trials.loop import past, work
from search.validate import validate

log = logging.getLogger("search")

WORKER_WAIT_SECONDS = 600  # how long a worker waits for the coordinator to enqueue the candidates


def run(cfg) -> int:
    """Run (or resume) the search described by `cfg`; returns the process exit code."""
    validate(cfg)
    storage.check_reachable(cfg)  # before anything is written: a bad storage URL changes no files
    run_dir = run_dir_of(cfg)
    started = time.perf_counter()

    splits = load_data(cfg)
    proxy = ProxyBase.of(cfg.base, splits[0].num_classes, splits[0].channels)
    with timing.phase("complexity"):
        records = plan_candidates(cfg, proxy)
    table = pd.DataFrame(records, columns=CANDIDATE_COLUMNS)
    table = table.astype({"fvcore_flops": "Int64", "activations": "Int64"})  # empty where not traced
    kept = unique_points([r for r in records if r["kept"]])
    if cfg.series:  # an experiment trains every point: largest first, so the last one to run alone is small
        kept.sort(key=lambda r: -r["flops"])
    keys = [r[queue.KEY_ATTR] for r in kept]
    shares = cfg.search.space == "shares"
    total = cfg.search.trials if shares else len(kept)  # the trials there are to claim
    find_study = _study_finder(cfg, run_dir)
    if cfg.search.role == "worker" and not cfg.search.dry_run:
        _wait_for_coordinator(cfg, find_study, keys, "waiting for the coordinator of study %r to queue candidates")
    else:
        find_study()  # a study scored with other settings is refused before any file is written
    run_dir.mkdir(parents=True, exist_ok=True)
    log_to(run_dir / "search.log")
    chosen = workers.resolve_auto(cfg, kept, splits, total)
    if chosen:
        log.info(chosen)
    write_yaml(run_dir / "config.yaml", storage.redact(OmegaConf.to_container(cfg, resolve=True)))
    write_csv(run_dir / "candidates.csv", table)
    print_plan(table, len(kept), cfg, run_dir)
    largest, stored = max((r["resolution"] for r in kept), default=0), splits[0].images.shape[-1]
    if largest > stored:
        log.warning("warning: candidates of up to %d px are upsampled from the data's %d px images, which adds no "
                    "detail (for synthetic data and image folders, raise data.native_size)", largest, stored)
    if cfg.search.dry_run:
        return 0

    ctx = open_context(cfg, RANGES if shares else optuna_ranges(kept), splits)
    if cfg.search.role == "coordinator":
        if cfg.storage.kind == "sqlite":
            requeued = queue.requeue_interrupted(ctx.study, ctx.params_of, cfg.search.max_attempts)
            if requeued:
                log.info("re-queued %d candidate(s) interrupted in an earlier run", requeued)
        added = queue.enqueue_missing(ctx.study, kept, ctx.params_of)
        log.info("study %r: %d candidate(s) queued now, %d in total", cfg.name, added, len(kept))
        log.info("storage: %s", storage.storage_hint(cfg, run_dir))
    timeout = cfg.search.timeout
    pool = workers.start(cfg, total, ctx.ranges, timeout=timeout) if cfg.search.workers > 1 else []
    deadline = None if timeout is None else started + timeout
    work(ctx, total, deadline)
    while cfg.search.role == "worker" and not past(deadline) and queue.unsettled(ctx.study, keys):  # a late coordinator
        _wait_for_coordinator(cfg, lambda: ctx.study, keys,
                              "candidates of study %r are not queued yet: waiting for its coordinator")
        work(ctx, total, deadline)
    died = workers.wait(pool)
    if cfg.search.role == "coordinator":
        confirm.confirm(ctx, deadline)
        checkpoint.remove_empty_folder(run_dir)

    trials = confirm.scored(ctx)
    write_csv(run_dir / "trials.csv", trials)
    if shares:  # the networks the sampler chose, as a grid search lists its candidates up front
        write_csv(run_dir / "candidates.csv", sampled_candidates(trials))
    best = best_summary(cfg, trials)
    if best is not None:
        write_yaml(run_dir / "best.yaml", best)
    shown = GRID_PARAMS if shares else ctx.ranges  # a share search's Optuna params are folded: show what they became
    print_results(trials, list(shown), best, run_dir, time.perf_counter() - started,
                  chance_sentence(trials, splits[0].num_classes, len(splits[1].images)))
    waiting = int((trials.state == "WAITING").sum())
    if timeout is not None and waiting:  # last, below the results table
        log.warning("search.timeout=%g s: %d candidate(s) still queued; run the same command again to train them",
                    timeout, waiting)
    workers.raise_if_died(died)
    return 0


def _study_finder(cfg, run_dir):
    """A function returning the run's existing study (None while there is none), opened without
    creating or changing any file; it raises ConfigError if the study was scored with settings
    other than `cfg`'s (search/fingerprint.py)."""
    settings, backend = fingerprint.score_settings(cfg), None

    def find():
        nonlocal backend
        backend = backend or storage.open_existing(cfg, run_dir)
        study = storage.load_existing(backend, cfg.name)
        if study is not None:
            fingerprint.check(study.user_attrs, settings, cfg.name)
        return study

    return find


def _wait_for_coordinator(cfg, find_study, keys, message: str) -> None:
    """search.role=worker: wait until the study has a queued or running trial, or every candidate
    is done; log `message` (% the study's name) if it has to wait. A new study, or a resumed one
    whose coordinator has not queued its missing candidates yet, has neither. Writes nothing."""
    def waiting():
        log.info(message + " (up to %d s)", cfg.name, WORKER_WAIT_SECONDS)

    if queue.wait_for_work(find_study, keys, WORKER_WAIT_SECONDS, waiting=waiting) is None:
        raise ConfigError(
            f"search.role=worker found no candidates in study {cfg.name!r} after {WORKER_WAIT_SECONDS} s: "
            "start the coordinator (the same command without search.role=worker) first"
        )
