"""Failures that must not stop a search: a candidate that always crashes, a process killed on its
last attempt, a live worker whose trial was declared stale, two coordinators at once."""

from __future__ import annotations

import collections
import os
import signal
import time

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from search import runner
from search.config import ConfigError
from search.storage import heartbeat as hb
from search.storage import queue
from search.trials import loop
from tests.conftest import compose, popen_search, pythonpath, run_cli

BROKEN = 24  # the resolution of exactly one TINY candidate (grid:d=1,w=1,r=1.5)


def _crash_at(resolution, monkeypatch, error=RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")):
    real = loop.train
    calls = collections.Counter()

    def train(model, train_data, *args, **kwargs):
        res = train_data.images.shape[-1]
        calls[res] += 1
        if res == resolution:
            raise error
        return real(model, train_data, *args, **kwargs)

    monkeypatch.setattr(loop, "train", train)
    return calls


@pytest.mark.parametrize("attempts", [1, 2])
def test_a_candidate_that_always_crashes_fails_after_max_attempts_and_the_search_finishes(runs, monkeypatch, attempts):
    calls = _crash_at(BROKEN, monkeypatch)
    cfg = compose("name=crash", "search.pruner=none", "train.epochs=1", f"search.max_attempts={attempts}", runs_dir=runs)
    assert runner.run(cfg) == 0
    assert calls[BROKEN] == attempts

    out = runs / "crash"
    trials = pd.read_csv(out / "trials.csv")
    broken = trials[trials.resolution == BROKEN]
    assert list(broken.state) == ["FAIL"] * attempts
    assert all("RuntimeError: CUDA out of memory" in f for f in broken.failure)
    assert (trials[trials.resolution != BROKEN].state == "COMPLETE").all() and len(trials) == 2 + attempts
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["gamma"] == 1  # the broken candidate is the only one with gamma 1.5

    assert runner.run(cfg) == 0  # resuming: the candidate failed for good is not tried again
    assert calls[BROKEN] == attempts
    assert len(pd.read_csv(out / "trials.csv")) == 2 + attempts


FAULT = f"""
import search.trials.loop as loop

real = loop.train


def train(model, train_data, *args, **kwargs):  # injected by the test: one candidate always runs out of memory
    if train_data.images.shape[-1] == {BROKEN}:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
    return real(model, train_data, *args, **kwargs)


loop.train = train
"""


def test_a_candidate_that_always_crashes_in_a_real_process(tmp_path):
    """The same through the real command line: exit 0, the results written, the crash recorded."""
    (tmp_path / "fault").mkdir()
    (tmp_path / "fault" / "sitecustomize.py").write_text(FAULT)  # loaded by the interpreter at start
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(tmp_path / "fault"), pythonpath()]))
    proc = popen_search("name=crash", "search.pruner=none", "train.epochs=1", runs=tmp_path / "runs", env=env)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, output[-2000:]
    trials = pd.read_csv(tmp_path / "runs" / "crash" / "trials.csv")
    broken = trials[trials.resolution == BROKEN]
    assert list(broken.state) == ["FAIL", "FAIL"] and broken.failure.str.contains("CUDA out of memory").all()
    assert (trials[trials.resolution != BROKEN].state == "COMPLETE").all()
    assert (tmp_path / "runs" / "crash" / "best.yaml").is_file() and "CUDA out of memory" in output


def test_max_attempts_must_be_positive(runs):
    with pytest.raises(ConfigError, match="search.max_attempts=0 must be > 0"):
        runner.run(compose("name=bad", "search.max_attempts=0", runs_dir=runs))


def _wait_for_attempt_running(db, proc, attempt: int, timeout: float = 300) -> str:
    """Block until the search in `proc` trains some candidate's `attempt`-th try; return its key."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"the search exited ({proc.returncode}) first: {proc.communicate()[0][-2000:]}"
        if db.exists():
            try:
                running = optuna.load_study(study_name="killed", storage=f"sqlite:///{db.as_uri()}?mode=ro&uri=true"
                                            ).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            except Exception:  # noqa: BLE001 (the database is being created; read-only, so never by us)
                running = []
            for t in running:
                if t.user_attrs.get(queue.ATTEMPT_ATTR, 1) == attempt:
                    return t.user_attrs["key"]
        time.sleep(0.2)
    raise AssertionError(f"no attempt {attempt} started within {timeout} s")


def test_a_candidate_whose_process_is_killed_on_every_try_fails_for_good_and_the_search_finishes(tmp_path):
    """Real processes on SQLite, as the kernel's OOM killer would do it: the search is SIGKILLed while it
    trains one candidate, on its first and on its second (last) try; the next start fails that candidate
    for good, trains the rest and writes the results."""
    runs, args = tmp_path / "runs", ["name=killed", "search.pruner=none", "train.epochs=8", "search.max_attempts=2"]
    db = runs / "killed" / "study.db"
    victim = None
    for attempt in (1, 2):
        proc = popen_search(*args, runs=runs)
        key = _wait_for_attempt_running(db, proc, attempt)
        assert victim in (None, key)  # only the killed candidate has a second try
        victim = key
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    result = run_cli(*args, runs_dir=runs)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = pd.read_csv(runs / "killed" / "trials.csv")
    tries = trials[trials.key == victim]
    assert list(tries.state) == ["FAIL", "FAIL"]  # two tries, the last failed for good: no third
    assert (trials[trials.key != victim].state == "COMPLETE").all() and trials.key.nunique() == 3
    assert (runs / "killed" / "best.yaml").is_file()


def _study_with_one_claimed(tmp_path, attrs):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(storage=storage, study_name="s")
    study.enqueue_trial({"x": 1.0}, user_attrs=attrs)
    trial = queue.claim(study, storage)
    return storage, study, trial


def test_a_stale_trial_of_a_killed_process_on_its_last_attempt_is_failed_for_good(tmp_path):
    storage, study, trial = _study_with_one_claimed(tmp_path, {"key": "a", queue.ATTEMPT_ATTR: 2})
    assert hb.retry_stale(study, storage, grace=-1, params_of=dict, max_attempts=2) == 1
    [t] = study.get_trials()
    assert t.state == TrialState.FAIL and t.user_attrs[queue.FINAL_ATTR]
    assert queue.enqueue_missing(study, [{"key": "a", "x": 1.0}], dict) == 0  # not re-added on resume


def test_a_stale_trial_with_attempts_left_is_queued_as_the_next_attempt(tmp_path):
    storage, study, trial = _study_with_one_claimed(tmp_path, {"key": "a"})
    assert hb.retry_stale(study, storage, grace=-1, params_of=dict, max_attempts=2) == 1
    failed, queued = study.get_trials()
    assert failed.state == TrialState.FAIL and queue.FINAL_ATTR not in failed.user_attrs
    assert queued.state == TrialState.WAITING and queued.user_attrs[queue.ATTEMPT_ATTR] == 2


def test_sqlite_resume_counts_a_killed_last_attempt(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s")
    study.enqueue_trial({"x": 1.0}, user_attrs={"key": "a", queue.ATTEMPT_ATTR: 2})
    queue.claim(study, study._storage)  # noqa: SLF001 (its process is then "killed")
    assert queue.requeue_interrupted(study, dict, max_attempts=2) == 1
    [t] = study.get_trials()
    assert t.state == TrialState.FAIL and t.user_attrs[queue.FINAL_ATTR]


def test_a_live_worker_whose_trial_was_declared_stale_drops_its_result_and_goes_on(runs, monkeypatch):
    """While the first trial trains, "another process" (a second storage object on the same
    journal) declares it stale: fails it and queues its candidate again. The late result is dropped."""
    real, declared = loop.train, []

    def train(*args, **kwargs):
        if not declared:
            other = optuna.storages.JournalStorage(
                optuna.storages.journal.JournalFileBackend(str(runs / "stale" / "study.journal")))
            study = optuna.load_study(study_name="stale", storage=other)
            [running] = study.get_trials(states=(TrialState.RUNNING,))
            other.set_trial_user_attr(running._trial_id, queue.FAILURE_ATTR, "stale: no heartbeat for 60 s")  # noqa: SLF001
            assert queue.requeue(study, running.number, running.user_attrs, lambda a: dict(running.params), max_attempts=2)
            declared.append(running.user_attrs["key"])
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train", train)
    cfg = compose("name=stale", "storage=journal", "search.pruner=none", "train.epochs=1", runs_dir=runs)
    assert runner.run(cfg) == 0

    trials = pd.read_csv(runs / "stale" / "trials.csv")
    complete = trials[trials.state == "COMPLETE"]
    assert sorted(complete.key) == sorted(set(complete.key)) and len(complete) == 3  # each once
    [failed] = trials[trials.state == "FAIL"].itertuples()
    assert failed.key == declared[0] and failed.failure.startswith("stale")
    assert "was declared stale (no heartbeat) and re-run elsewhere" in (runs / "stale" / "search.log").read_text()


def test_a_worker_stopped_until_its_trial_was_rerun_elsewhere_drops_its_result_and_goes_on(runs, tmp_path):
    """Real processes: a worker is SIGSTOPped mid-trial; its heartbeat stops, the coordinator fails
    the trial as stale, queues its candidate again and completes it; then SIGCONT."""
    import os
    import signal

    from tests.conftest import popen_search, wait_for_output
    from tests.test_workers import FAST_HEARTBEAT, _each_once, _pid_of, _study, _wait_for

    args = ["name=paused", "storage=journal", "search.pruner=none", "train.epochs=6", *FAST_HEARTBEAT]
    (runs / "paused").mkdir(parents=True)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(runs / "paused" / "study.journal")))
    output = tmp_path / "worker.out"
    procs = [popen_search(*args, "search.role=worker", runs=runs, output=output)]
    worker = procs[0]
    try:
        wait_for_output(output, "waiting for the coordinator", worker)  # ready before anything is queued
        procs.append(coordinator := popen_search(*args, runs=runs))
        trials = _wait_for(storage, "paused", lambda ts: any(
            t.state == TrialState.RUNNING and _pid_of(t) == worker.pid for t in ts))
        os.kill(worker.pid, signal.SIGSTOP)
        [paused] = [t for t in trials if t.state == TrialState.RUNNING and _pid_of(t) == worker.pid]
        key = paused.user_attrs["key"]
        assert _study(storage, "paused").trials[paused.number].state == TrialState.RUNNING  # stopped mid-trial

        _wait_for(storage, "paused", lambda ts: any(t.user_attrs["key"] == key and t.state == TrialState.COMPLETE
                                                    for t in ts))  # re-run by the coordinator
        out = coordinator.communicate(timeout=300)[0]
        assert coordinator.returncode == 0, out[-2000:]
        os.kill(worker.pid, signal.SIGCONT)
        assert worker.wait(timeout=300) == 0, output.read_text()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    said = output.read_text()
    dropped = f"trial {paused.number} {key} was declared stale (no heartbeat) and re-run elsewhere; its late result is dropped"
    assert dropped in said and "results in" in said[said.index(dropped):]  # it went on to the end
    trials = _study(storage, "paused").trials
    _each_once(trials, pd.read_csv(runs / "paused" / "candidates.csv").query("kept").key)
    [failed] = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.number == paused.number and failed.user_attrs[queue.FAILURE_ATTR].startswith("stale: no heartbeat")
    assert len(pd.read_csv(runs / "paused" / "trials.csv")) == len(trials)
    assert (runs / "paused" / "best.yaml").is_file()


def test_a_candidate_enqueued_twice_is_claimed_once(tmp_path):
    """What two coordinators that start together do: both enqueue; the later trial is failed as a duplicate."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(storage=storage, study_name="s")
    records = [{"key": "a", "x": 1.0}, {"key": "b", "x": 2.0}]
    assert queue.enqueue_missing(study, records, lambda r: {"x": r["x"]}) == 2
    first = queue.claim(study, storage)  # a worker took "a" already
    study.enqueue_trial({"x": 1.0}, user_attrs=records[0])  # the second coordinator's check came earlier
    study.enqueue_trial({"x": 2.0}, user_attrs=records[1])
    claimed = queue.claim(study, storage)
    assert claimed.user_attrs["key"] == "b" and queue.claim(study, storage) is None
    states = [(t.user_attrs["key"], t.state, t.user_attrs.get(queue.FAILURE_ATTR)) for t in study.get_trials()]
    assert states == [("a", TrialState.RUNNING, None), ("b", TrialState.RUNNING, None),
                      ("a", TrialState.FAIL, queue.DUPLICATE), ("b", TrialState.FAIL, queue.DUPLICATE)]
    assert first.user_attrs["key"] == "a"
    assert queue.enqueue_missing(study, records, lambda r: {"x": r["x"]}) == 0


# Runs the CLI with the first enqueue held until both coordinators have checked what is queued:
# the race of two coordinators started together, every time (test-side only).
BARRIER = """
import os, pathlib, runpy, sys, time
import optuna
barrier, real = pathlib.Path(sys.argv.pop(1)), optuna.study.Study.enqueue_trial
def enqueue_trial(self, *args, **kwargs):
    if not getattr(enqueue_trial, "passed", False):
        (barrier / str(os.getpid())).touch()
        while len(list(barrier.iterdir())) < 2:
            time.sleep(0.05)
        enqueue_trial.passed = True
    return real(self, *args, **kwargs)
optuna.study.Study.enqueue_trial = enqueue_trial
sys.argv[0] = "run_search.py"
runpy.run_path("run_search.py", run_name="__main__")
"""


@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_two_coordinators_at_once_run_each_candidate_once(runs, tmp_path, kind, request):
    import os
    import subprocess
    import sys

    from search import storage as backends
    from tests.conftest import ROOT, TINY

    env = dict(os.environ)
    if kind == "postgres":
        env["OPTUNA_STORAGE_URL"] = request.getfixturevalue("postgres_url")
        storage = backends.open_rdb(env["OPTUNA_STORAGE_URL"])  # its tables made before the race
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    common = [*TINY, f"runs_dir={runs}", "name=twice", f"storage={kind}", "search.pruner=none", "train.epochs=2"]
    procs = [subprocess.Popen([sys.executable, "-c", BARRIER, str(barrier), *common], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-2000:]
    if kind == "journal":
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(runs / "twice" / "study.journal")))
    trials = optuna.load_study(study_name="twice", storage=storage).trials
    complete = collections.Counter(t.user_attrs["key"] for t in trials if t.state == TrialState.COMPLETE)
    kept = pd.read_csv(runs / "twice" / "candidates.csv").query("kept")
    assert set(complete) == set(kept.key) and set(complete.values()) == {1}  # each candidate once
    duplicates = [t for t in trials if t.state != TrialState.COMPLETE]
    assert len(duplicates) == len(kept)  # both enqueued every candidate: the race happened
    assert all(t.user_attrs[queue.FAILURE_ATTR] == queue.DUPLICATE for t in duplicates)
