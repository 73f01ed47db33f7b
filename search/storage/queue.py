"""The candidate queue inside the Optuna study: enqueue once, claim atomically, re-queue a failed attempt.

Candidates are enqueued once by the coordinator. Workers only ever *claim* queued trials (an
atomic WAITING -> RUNNING transition in the storage); they never let a sampler invent a new
trial, so a finite constrained grid is evaluated exactly once and then the study is done.
"""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.record import CANDIDATE_COLUMNS

FAILURE_ATTR = "failure"  # user attr: why a trial failed
FINAL_ATTR = "failure_is_final"  # user attr: a failure that a re-run would repeat (divergence)
KEY_ATTR = "key"  # user attr: the candidate's stable identity
WORKER_ATTR = "worker"  # user attr: host:pid of the process that claimed the trial
PLAN_ATTRS = ("candidate", "epochs", "seed")  # user attrs of a fidelity trial (search/fidelity.py): kept on a re-queue


def make_pruner(name: str, startup_trials: int, max_steps: int, warmup_steps: int = 0) -> optuna.pruners.BasePruner:
    """The pruner named in the config; steps are epochs completed (1, 2, ...)."""
    if name == "median":
        # Optuna may prune from step == n_warmup_steps on; our steps count epochs from 1, so
        # "warm-up of k epochs" means the first possible prune is at step k + 1.
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps + 1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_steps, reduction_factor=3)
    return optuna.pruners.NopPruner()



def open_study(storage, name: str, pruner) -> optuna.Study:
    return optuna.create_study(
        study_name=name, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
    )


def _settled(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial that needs no new attempt: queued, running, finished, or failed for good."""
    if trial.state == TrialState.FAIL:
        return bool(trial.user_attrs.get(FINAL_ATTR))
    return True


def enqueue_missing(study: optuna.Study, records: list[dict], params_of: Callable[[dict], dict]) -> int:
    """Enqueue every record whose candidate has no settled trial yet; returns how many."""
    present = {t.user_attrs.get(KEY_ATTR) for t in study.get_trials(deepcopy=False) if _settled(t)}
    added = 0
    for rec in records:
        if rec[KEY_ATTR] not in present:
            study.enqueue_trial(params_of(rec), user_attrs=_jsonable(rec))
            added += 1
    return added


def requeue_interrupted(study: optuna.Study, params_of: Callable[[dict], dict]) -> int:
    """Mark trials left RUNNING by a dead process as failed, and queue their candidates again.

    Only safe where no other process works on the study (SQLite, one process).
    """
    interrupted = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in interrupted:
        if FAILURE_ATTR not in trial.user_attrs:  # stopped before it could say why (e.g. Ctrl-C during its claim)
            study._storage.set_trial_user_attr(trial._trial_id, FAILURE_ATTR, "interrupted: its process ended")  # noqa: SLF001
        requeue(study, trial.number, trial.user_attrs, params_of)
    return len(interrupted)


def requeue(study: optuna.Study, number: int, attrs: dict, params_of: Callable[[dict], dict]) -> bool:
    """Fail trial `number` and queue its candidate (the record in `attrs`) for a new attempt.

    Only the process whose RUNNING -> FAIL transition succeeds re-queues, so two processes that
    both find the trial stale queue its candidate once. Returns whether this one did.
    """
    storage = study._storage  # noqa: SLF001 (the public tell() does not say whether it changed the state)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)  # noqa: SLF001
    try:
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    study.enqueue_trial(params_of(attrs), user_attrs=_candidate_attrs(attrs))
    return True


def claim(study: optuna.Study, storage, before: Callable[[int], None] | None = None) -> optuna.Trial | None:
    """Atomically take one queued trial of `study` (opened on `storage`), or None when none is queued.

    `before(trial_id)` runs just before the claim (the first heartbeat: a process killed right
    after claiming must not leave a RUNNING trial without one, which RDBStorage never calls stale).
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    for frozen in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        try:
            if before:
                before(trial_id)
            if storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                storage.set_trial_user_attr(trial_id, WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
                return optuna.Trial(study, trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def wait_for_queue(study: optuna.Study, timeout: float, poll: float = 2.0) -> bool:
    """Wait until the coordinator has enqueued candidates (the study has any trial)."""
    deadline = time.monotonic() + timeout
    while not study.get_trials(deepcopy=False):
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def count_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _candidate_attrs(attrs: dict) -> dict:
    """The candidate record (and a fidelity trial's plan) inside a trial's user attrs, without the
    results of the attempt."""
    return {k: attrs[k] for k in (*CANDIDATE_COLUMNS, *PLAN_ATTRS) if k in attrs}


def _jsonable(rec: dict) -> dict:
    """User attrs must be JSON: turn NaN into None and numpy scalars into Python numbers."""
    out = {}
    for k, v in rec.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out
