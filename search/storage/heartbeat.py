"""Heartbeats of running trials, and the retry of trials whose process died (stale trials).

Our workers claim queued trials themselves instead of calling `study.optimize`, so Optuna never
starts its heartbeat thread: this module drives heartbeats explicitly. PostgreSQL (RDBStorage
with `heartbeat_interval`) records them in its heartbeat table, in the database's clock, so
machines need not agree on the time. Optuna's JournalStorage has no heartbeats, so there a
heartbeat is a user attr holding the worker's wall-clock time (one machine, one clock).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.storage import queue

HEARTBEAT_ATTR = "heartbeat"  # user attr (journal storage): time.time() of the trial's last heartbeat


def record(storage, trial_id: int) -> None:
    """Say that the process working on trial `trial_id` is alive."""
    if queue.keeps_heartbeats(storage):
        storage.record_heartbeat(trial_id)
    else:
        storage.set_trial_user_attr(trial_id, HEARTBEAT_ATTR, time.time())


class Heartbeat:
    """Context manager: record heartbeats for one trial every `interval` s from a background thread.

    `interval=None` (SQLite: one process, nothing else can take over) records nothing. On
    PostgreSQL `claim_next` already recorded one just before the claim, since RDBStorage never
    calls a trial without any heartbeat stale; this one restarts the clock as the work starts.
    """

    def __init__(self, storage, trial_id: int, interval: float | None):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{trial_id}")

    def __enter__(self) -> "Heartbeat":
        if self.interval:
            record(self.storage, self.trial_id)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                record(self.storage, self.trial_id)
            except Exception:  # the trial finished between the check and the write; the next beat stops
                if self._stop.is_set():
                    return


def stale_trials(study: optuna.Study, storage, grace: float) -> list[FrozenTrial]:
    """Running trials whose last heartbeat is older than `grace` seconds."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return []
    if queue.keeps_heartbeats(storage):
        # Optuna's own check, in the database's clock. Its public wrapper, optuna.storages.fail_stale_trials,
        # fails the trials first, and a finished trial's attrs cannot change: the reason and the
        # attempts-used-up flag (queue.requeue) must be written before the transition.
        stale = set(storage._get_stale_trial_ids(study._study_id))  # noqa: SLF001
        return [t for t in running if t._trial_id in stale]
    now = time.time()
    return [t for t in running if now - _last_beat(t) > grace]


def _last_beat(trial: FrozenTrial) -> float:
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    return float(beat) if beat is not None else trial.datetime_start.timestamp()


def retry_stale(study: optuna.Study, storage, grace: float, params_of: Callable[[dict], dict],
                max_attempts: int | None = None) -> int:
    """Fail stale trials and queue their candidates again, unless a stale trial was its candidate's
    last attempt (queue.requeue); returns how many this process failed."""
    retried = 0
    for trial in stale_trials(study, storage, grace):
        try:
            storage.set_trial_user_attr(trial._trial_id, queue.FAILURE_ATTR, f"stale: no heartbeat for {grace} s")
        except Exception:  # finished meanwhile: it was not stale after all
            continue
        if queue.requeue(study, trial.number, trial.user_attrs, params_of, max_attempts):
            retried += 1
    return retried


def claim_next(study: optuna.Study, storage, grace: float | None, params_of, poll: float,
               max_attempts: int | None = None, propose=None) -> optuna.Trial | None:
    """Claim a queued trial, or else one that `propose(before)` makes (search/trials/shares.py);
    while others still run, wait for them (or for them to go stale)."""
    first_beat = storage.record_heartbeat if queue.keeps_heartbeats(storage) else None
    while True:
        if grace is not None:
            retry_stale(study, storage, grace, params_of, max_attempts)
        trial = queue.claim(study, storage, before=first_beat) or (propose(first_beat) if propose else None)
        if trial is not None or grace is None:
            return trial
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return None
        time.sleep(poll)
