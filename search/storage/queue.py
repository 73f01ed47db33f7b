"""The candidate queue inside the Optuna study: enqueue once, claim atomically, re-queue a failed attempt.

Candidates are enqueued once by the coordinator. Workers only ever *claim* queued trials (an
atomic WAITING -> RUNNING transition in the storage); they never let a sampler invent a new
trial, so a finite constrained grid is evaluated exactly once and then the study is done. The one
exception is a share search, whose sampler proposes each trial (search/trials/shares.py).
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from typing import Callable

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from search.record import CANDIDATE_COLUMNS, SHARE_PARAMS

FAILURE_ATTR = "failure"  # user attr: why a trial failed
FINAL_ATTR = "failure_is_final"  # user attr: a failure that a re-run would repeat (divergence, attempts used up)
ATTEMPT_ATTR = "attempt"  # user attr: which attempt at its candidate a trial is (1 when absent)
DUPLICATE = "duplicate enqueue"  # failure of a WAITING trial that a second coordinator enqueued too
METRIC = "accuracy"  # the objective: validation accuracy (0..1), maximised
KEY_ATTR = "key"  # user attr: the candidate's stable identity
WORKER_ATTR = "worker"  # user attr: host:pid of the process that claimed the trial
REPEAT_ATTR = "duplicate_of"  # user attr (search.space=shares): the trial whose network a proposal repeats
PLAN_ATTRS = ("candidate", "epochs", "seed")  # user attrs of a fidelity trial (search/fidelity.py): kept on a re-queue


def keeps_heartbeats(storage) -> bool:
    """Whether `storage` records heartbeats itself: an RDBStorage (or Optuna's cache around one)
    opened with `heartbeat_interval`. Public methods only, where Optuna's own check is private."""
    interval = getattr(storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def open_study(storage, name: str, pruner) -> optuna.Study:
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize", pruner=pruner, load_if_exists=True
    )
    with warnings.catch_warnings(action="ignore", category=optuna.exceptions.ExperimentalWarning):
        if study.metric_names is None:  # optuna-dashboard then says "accuracy", not "Objective 0"
            study.set_metric_names([METRIC])
    return study


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
            study.enqueue_trial(params_of(rec), user_attrs=jsonable(rec))
            added += 1
    if added:
        fail_duplicates(study, study._storage)  # noqa: SLF001
    return added


def fail_duplicates(study: optuna.Study, storage, trials: list | None = None) -> list[int]:
    """Fail queued trials whose candidate already has an earlier settled trial; returns their numbers.

    Two coordinators that start together may both enqueue a candidate (enqueue_missing checks,
    then acts). The earlier trial is kept: a later WAITING one of the same key is taken atomically
    (WAITING -> RUNNING, so neither a worker's claim nor the other coordinator can have it too)
    and failed as a duplicate. A re-queued attempt is not one: the attempt before it is FAIL.
    """
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    first: dict = {}
    for t in sorted(trials, key=lambda t: t.number):
        if _settled(t) and t.user_attrs.get(KEY_ATTR) is not None and REPEAT_ATTR not in t.user_attrs:
            first.setdefault(t.user_attrs[KEY_ATTR], t.number)
    failed = []
    for t in trials:
        if t.state != TrialState.WAITING or first.get(t.user_attrs.get(KEY_ATTR), t.number) >= t.number:
            continue
        try:
            if keeps_heartbeats(storage):  # RDBStorage never calls a RUNNING trial without one stale
                storage.record_heartbeat(t._trial_id)  # noqa: SLF001
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):  # noqa: SLF001
                continue
            storage.set_trial_user_attr(t._trial_id, FAILURE_ATTR, DUPLICATE)  # noqa: SLF001
            storage.set_trial_user_attr(t._trial_id, FINAL_ATTR, True)  # noqa: SLF001
            storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)  # noqa: SLF001
            failed.append(t.number)
        except UpdateFinishedTrialError:  # claimed or failed by another process first
            continue
    return failed


def requeue_interrupted(study: optuna.Study, params_of: Callable[[dict], dict], max_attempts: int | None = None) -> int:
    """Mark trials left RUNNING by a dead process as failed, and queue their candidates again
    (each such trial counts as an attempt: see `requeue`).

    Only safe where no other process works on the study (SQLite, one process).
    """
    interrupted = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in interrupted:
        if FAILURE_ATTR not in trial.user_attrs:  # stopped before it could say why (e.g. Ctrl-C during its claim)
            study._storage.set_trial_user_attr(trial._trial_id, FAILURE_ATTR, "interrupted: its process ended")  # noqa: SLF001
        requeue(study, trial.number, trial.user_attrs, params_of, max_attempts)
    return len(interrupted)


def attempts_used_up(attrs: dict, max_attempts: int | None) -> bool:
    """Whether the trial with user attrs `attrs` was its candidate's last allowed attempt."""
    return max_attempts is not None and int(attrs.get(ATTEMPT_ATTR) or 1) >= max_attempts


def requeue(study: optuna.Study, number: int, attrs: dict, params_of: Callable[[dict], dict],
            max_attempts: int | None = None) -> bool:
    """Fail trial `number` and queue its candidate (the record in `attrs`) for a new attempt.

    With `max_attempts`, the failed trial counts as an attempt: the new one is attempt n + 1, and
    after attempt `max_attempts` the candidate is not queued again but failed for good
    (FINAL_ATTR). Without it (Ctrl-C) the new trial keeps the attempt number.
    Only the process whose RUNNING -> FAIL transition succeeds re-queues, so two processes that
    both find the trial stale queue its candidate once. Returns whether this one failed the trial.
    """
    storage = study._storage  # noqa: SLF001 (the public tell() does not say whether it changed the state)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study._study_id, number)  # noqa: SLF001
    # A share search's proposal (search/trials/shares.py) that died before its network was recorded: nothing to queue.
    final = attempts_used_up(attrs, max_attempts) or KEY_ATTR not in attrs
    try:
        if final:  # before the transition: a finished trial's attrs cannot change
            storage.set_trial_user_attr(trial_id, FINAL_ATTR, True)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    if not final:
        attempt = int(attrs.get(ATTEMPT_ATTR) or 1) + (max_attempts is not None)
        study.enqueue_trial(params_of(attrs), user_attrs={**_candidate_attrs(attrs), ATTEMPT_ATTR: attempt})
    return True


def claim(study: optuna.Study, storage, before: Callable[[int], None] | None = None) -> optuna.Trial | None:
    """Atomically take one queued trial of `study` (opened on `storage`), or None when none is queued.

    `before(trial_id)` runs just before the claim (the first heartbeat: a process killed right
    after claiming must not leave a RUNNING trial without one, which RDBStorage never calls stale).
    """
    study_id = storage.get_study_id_from_name(study.study_name)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    duplicates = set()
    if len({t.user_attrs.get(KEY_ATTR) for t in trials}) < len(trials):  # re-queued attempts, or duplicates
        duplicates = set(fail_duplicates(study, storage, trials))
    for frozen in (t for t in trials if t.state == TrialState.WAITING and t.number not in duplicates):
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


def unsettled(study: optuna.Study, keys) -> set:
    """The candidate keys among `keys` without a settled trial in `study` (never queued, or
    failed without a new attempt queued yet)."""
    return set(keys) - {t.user_attrs.get(KEY_ATTR) for t in study.get_trials(deepcopy=False) if _settled(t)}


def has_work(study: optuna.Study, keys) -> bool:
    """Whether a worker of the candidates `keys` can start on `study`: a trial is queued or running
    (maybe stale: then retried), or every candidate is settled (nothing is left to wait for)."""
    if study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)):
        return True
    return not unsettled(study, keys)


def wait_for_work(find_study: Callable[[], optuna.Study | None], keys, timeout: float, poll: float = 1.0,
                  waiting: Callable[[], None] | None = None) -> optuna.Study | None:
    """Poll `find_study()` (None while the study does not exist) until `has_work`; returns the
    study, or None after `timeout` seconds. `waiting()` is called once, if it has to wait."""
    deadline = time.monotonic() + timeout
    while (study := find_study()) is None or not has_work(study, keys):
        if time.monotonic() > deadline:
            return None
        if waiting is not None:
            waiting()
            waiting = None
        time.sleep(poll)
    return study


def count_states(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def _candidate_attrs(attrs: dict) -> dict:
    """The candidate record (and a fidelity trial's plan) inside a trial's user attrs, without the
    results of the attempt."""
    return {k: attrs[k] for k in (*CANDIDATE_COLUMNS, *SHARE_PARAMS, *PLAN_ATTRS) if k in attrs}


def jsonable(rec: dict) -> dict:
    """User attrs must be JSON: turn NaN into None and numpy scalars into Python numbers."""
    out = {}
    for k, v in rec.items():
        if hasattr(v, "item"):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            v = None
        out[k] = v
    return out
