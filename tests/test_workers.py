"""Several processes on one study: each candidate is trained exactly once."""

from __future__ import annotations

import collections
import os
import signal
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.storages.journal import JournalFileBackend

from optuna.trial import TrialState

from search.storage import heartbeat as hb
from search import runner
from search import storage as backends
from search.storage import queue
from search.trials import workers
from search.config import ConfigError
from tests.conftest import compose, popen_search, run_cli, wait_for_output, wait_one_done_one_running


def test_a_process_killed_right_after_its_claim_leaves_a_trial_that_goes_stale(tmp_path):
    """RDBStorage (PostgreSQL's kind) never calls a RUNNING trial without any heartbeat stale,
    so the claim itself must leave one: here the claimer "dies" before its Heartbeat starts."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'hb.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="hb")
    study.enqueue_trial({"x": 1.0})
    trial = hb.claim_next(study, storage, grace=1, params_of=dict, poll=0.1)
    assert trial is not None and hb.stale_trials(study, storage, grace=1) == []
    time.sleep(2.2)  # SQLite's clock counts whole seconds
    assert [t.number for t in hb.stale_trials(study, storage, grace=1)] == [trial.number]


GiB = 2**30


@pytest.mark.parametrize("facts, count", [
    (dict(cores=2, threads=0, gpus=0, storage_kind="journal", trials=6, memory=20 * GiB, per_process=2 * GiB), 2),
    (dict(cores=16, threads=0, gpus=0, storage_kind="journal", trials=6, memory=None, per_process=None), 6),
    (dict(cores=16, threads=4, gpus=0, storage_kind="postgres", trials=9, memory=None, per_process=None), 4),
    (dict(cores=2, threads=4, gpus=0, storage_kind="journal", trials=6, memory=None, per_process=None), 1),
    (dict(cores=8, threads=0, gpus=0, storage_kind="journal", trials=9, memory=5 * GiB, per_process=2 * GiB), 2),
    (dict(cores=8, threads=0, gpus=0, storage_kind="journal", trials=9, memory=1 * GiB, per_process=2 * GiB), 1),
    (dict(cores=16, threads=0, gpus=2, storage_kind="journal", trials=6, memory=1 * GiB, per_process=2 * GiB), 2),
    (dict(cores=16, threads=0, gpus=0, storage_kind="sqlite", trials=6, memory=None, per_process=None), 1),
])
def test_auto_workers_one_per_core_as_memory_allows_one_per_gpu_one_on_sqlite(facts, count):
    assert workers.auto_count(**facts) == count


def test_a_training_needs_its_resized_images_and_its_batchs_activations_of_the_largest_candidate():
    small, large = {"resolution": 10, "activations": 100}, {"resolution": 20, "activations": 50}
    # 4 bytes x (3 images x 1 channel x 20^2 pixels + 6 copies x batch 2 x 50 activations) = 7200 > 6000 for small
    assert workers.ACTIVATION_COPIES == 6
    assert workers.training_bytes([small, large], batch_size=2, images=3, channels=1) == 7200
    assert workers.training_bytes([{"resolution": 20, "activations": None}], 2, 3, 1) == workers.UNKNOWN_TRAINING
    read_back = workers.training_bytes([{"resolution": 20, "activations": 50.0}], 2, 3, 1)  # as search.fidelity reads it
    assert read_back == 7200 and type(read_back) is int  # a float here made the logged process count 13.0


def _open_sqlite_at_once(path, barrier, results):
    barrier.wait()  # all processes reach Optuna's create-if-missing together
    try:
        backends.sqlite_storage(path)
        results.put("ok")
    except Exception as e:  # noqa: BLE001 (reported to the test)
        results.put(f"{type(e).__name__}: {e}"[:200])


def test_processes_creating_one_sqlite_study_at_once_all_open_it(tmp_path):
    """Two searches started together on a fresh study.db both create Optuna's tables and stamp
    their version; unguarded, about a third of such openings failed ("UNIQUE constraint failed:
    alembic_version", "table ... already exists")."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")  # only storage work after the fork: no threads involved
    outcomes = []
    for round_ in range(6):
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_open_sqlite_at_once, args=(tmp_path / f"{round_}.db", barrier, results))
                 for _ in range(4)]
        for p in procs:
            p.start()
        outcomes += [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
    assert outcomes == ["ok"] * 24


def test_coordinator_and_worker_on_a_journal_storage(runs):
    common = ["name=two", "storage=journal", "search.pruner=none", "train.epochs=4"]
    coordinator = popen_search(*common, runs=runs)
    worker = popen_search(*common, "search.role=worker", runs=runs)
    outputs = [p.communicate(timeout=300)[0] for p in (coordinator, worker)]
    assert coordinator.returncode == 0, outputs[0][-2000:]
    assert worker.returncode == 0, outputs[1][-2000:]

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(runs / "two" / "study.journal")))
    trials = optuna.load_study(study_name="two", storage=storage).trials
    keys = collections.Counter(t.user_attrs["key"] for t in trials)
    kept = pd.read_csv(runs / "two" / "candidates.csv").query("kept")
    assert set(keys) == set(kept.key) and set(keys.values()) == {1}  # every candidate exactly once
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


def test_worker_without_coordinator_gives_up_with_one_line(runs, monkeypatch):
    monkeypatch.setattr(runner, "WORKER_WAIT_SECONDS", 1)
    cfg = compose("name=alone", "storage=journal", "search.role=worker", runs_dir=runs)
    with pytest.raises(ConfigError, match="found no candidates in study 'alone' after 1 s"):
        runner.run(cfg)


def test_a_worker_started_before_the_coordinator_of_a_resumed_study_waits_for_it(runs, tmp_path):
    """The study exists and has nothing queued, but candidates are missing (here: the earlier run
    had search.max_candidates=1): a worker must wait for the coordinator's re-run, not end at once."""
    args = ["name=late", "storage=journal", "search.pruner=none", "train.epochs=1"]
    assert runner.run(compose(*args, "search.max_candidates=1", runs_dir=runs)) == 0
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(runs / "late" / "study.journal")))
    [done] = _study(storage, "late").trials

    output = tmp_path / "worker.out"
    procs = [popen_search(*args, "search.role=worker", runs=runs, output=output)]
    try:
        wait_for_output(output, "waiting for the coordinator of study 'late' to queue candidates", procs[0])
        assert procs[0].poll() is None and len(_study(storage, "late").trials) == 1
        procs.append(coordinator := popen_search(*args, runs=runs))
        out = coordinator.communicate(timeout=300)[0]
        assert coordinator.returncode == 0, out[-2000:]
        assert procs[0].wait(timeout=300) == 0, output.read_text()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    trials = _study(storage, "late").trials
    _each_once(trials, pd.read_csv(runs / "late" / "candidates.csv").query("kept").key)
    assert len(trials) == 3 and trials[0].datetime_complete == done.datetime_complete  # the first kept as it was


def _study(storage, name):
    return optuna.load_study(study_name=name, storage=storage)


def _wait_for(storage, name, predicate, timeout=180):
    """Poll the study until predicate(trials) is true; returns the trials."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            trials = _study(storage, name).trials
            if predicate(trials):
                return trials
        except Exception:  # the run folder or the study does not exist yet
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting on study {name!r}")


def _pid_of(trial) -> int:
    return int(trial.user_attrs[queue.WORKER_ATTR].rsplit(":", 1)[1])


def _each_once(trials, kept_keys):
    complete = collections.Counter(t.user_attrs["key"] for t in trials if t.state == TrialState.COMPLETE)
    assert set(complete) == set(kept_keys) and set(complete.values()) == {1}  # every candidate exactly once
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_sigkill_mid_trial_then_resume_keeps_finished_and_reruns_the_killed(runs):
    db = runs / "kill" / "study.db"
    storage = f"sqlite:///{db}"
    slow = ["name=kill", "search.pruner=none", "train.epochs=6"]
    proc = popen_search(*slow, runs=runs)
    wait_one_done_one_running(db, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    done = {t.number: t.user_attrs["key"] for t in _study(storage, "kill").trials if t.state == TrialState.COMPLETE}

    result = run_cli(*slow, runs_dir=runs)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = _study(storage, "kill").trials
    _each_once(trials, pd.read_csv(runs / "kill" / "candidates.csv").query("kept").key)
    assert {t.number: t.user_attrs["key"] for t in trials if t.state == TrialState.COMPLETE and t.number in done} == done
    assert any(t.state == TrialState.FAIL for t in trials)  # the killed attempt, failed and re-queued
    assert len(pd.read_csv(runs / "kill" / "trials.csv")) == len(trials)


FAST_HEARTBEAT = ["storage.heartbeat_interval=1", "storage.grace_period=3"]


def test_two_local_workers_one_killed_mid_trial(runs):
    """search.workers=2 on a journal: kill the spawned worker mid-trial; the coordinator re-runs its candidate."""
    args = ["name=pair", "storage=journal", "search.workers=2", "search.pruner=none", "train.epochs=4", *FAST_HEARTBEAT]
    (runs / "pair").mkdir(parents=True)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(runs / "pair" / "study.journal")))
    coordinator = popen_search(*args, runs=runs)
    trials = _wait_for(storage, "pair", lambda ts: any(
        t.state == TrialState.RUNNING and _pid_of(t) != coordinator.pid for t in ts))
    victim = next(_pid_of(t) for t in trials if t.state == TrialState.RUNNING and _pid_of(t) != coordinator.pid)
    os.kill(victim, signal.SIGKILL)
    out = coordinator.communicate(timeout=300)[0]
    assert coordinator.returncode == 1, out[-2000:]
    assert f"error: worker-1 (pid {victim}) killed by SIGKILL" in out

    trials = _study(storage, "pair").trials
    _each_once(trials, pd.read_csv(runs / "pair" / "candidates.csv").query("kept").key)
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and killed[0].user_attrs["failure"].startswith("stale: no heartbeat")
    assert len(pd.read_csv(runs / "pair" / "trials.csv")) == len(trials)  # written once all were done

    again = run_cli(*args, runs_dir=runs)  # resuming a finished search runs nothing
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(_study(storage, "pair").trials) == len(trials)


def _running(pid: int) -> bool:
    """Whether process `pid` is alive (a zombie, exited but not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_a_local_worker_stops_when_its_coordinator_is_killed(runs):
    """kill -9 of the coordinator (or a scheduler's time limit) must not leave its spawned worker training
    on alone beside the next run: the worker puts its candidate back in the queue and exits."""
    args = ["name=orphan", "storage=journal", "search.workers=2", "search.pruner=none", "train.epochs=20", *FAST_HEARTBEAT]
    (runs / "orphan").mkdir(parents=True)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(runs / "orphan" / "study.journal")))
    log = runs / "orphan.out"  # a file, as a terminal: a pipe closed with the coordinator would break the worker's writes
    # started as `python run_search.py ... &` from a script is: SIGINT ignored, and inherited by the worker
    coordinator = popen_search(*args, runs=runs, output=log, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    trials = _wait_for(storage, "orphan", lambda ts: any(
        t.state == TrialState.RUNNING and _pid_of(t) != coordinator.pid for t in ts))
    worker = next(_pid_of(t) for t in trials if t.state == TrialState.RUNNING and _pid_of(t) != coordinator.pid)
    coordinator.kill()
    coordinator.wait(timeout=60)
    # It checks each second, but putting its candidate back waits for the journal's lock, and a coordinator
    # killed while writing leaves that lock held until Optuna breaks it after 30 s (seen in CI)
    deadline = time.time() + 60
    while _running(worker) and time.time() < deadline:
        time.sleep(0.2)
    assert not _running(worker), "the worker trained on after its coordinator died"
    stopped = [t for t in _study(storage, "orphan").trials if t.state == TrialState.FAIL and _pid_of(t) == worker]
    assert [t.user_attrs["failure"] for t in stopped] == ["interrupted: KeyboardInterrupt"]  # queued again at once
    assert f"the coordinator (pid {coordinator.pid}) is gone: this worker stops" in log.read_text()

    again = run_cli(*args, runs_dir=runs)
    assert again.returncode == 0, again.stderr[-2000:]
    _each_once(_study(storage, "orphan").trials, pd.read_csv(runs / "orphan" / "candidates.csv").query("kept").key)


def test_spawned_workers_keep_the_search_timeout(runs):
    """search.timeout reaches the workers search.workers starts: here it passes before anyone's first
    claim, so nothing trains (a worker without the limit would train every candidate)."""
    args = ["name=late-pair", "storage=journal", "search.workers=2", "search.pruner=none", "train.epochs=1"]
    assert runner.run(compose(*args, "search.timeout=1e-6", runs_dir=runs)) == 0
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(runs / "late-pair" / "study.journal")))
    states = [t.state for t in _study(storage, "late-pair").trials]
    assert states == [TrialState.WAITING] * len(states) and len(states) >= 2
    assert "candidate(s) still queued" in (runs / "late-pair" / "search.log").read_text()

def test_three_workers_on_postgres_one_killed(runs, postgres_url):
    """A real PostgreSQL server: coordinator + 2 joining workers; one is killed mid-trial."""
    env = dict(os.environ, OPTUNA_STORAGE_URL=postgres_url)
    args = ["name=pg", "storage=postgres", "search.pruner=none", "train.epochs=3", *FAST_HEARTBEAT]
    procs = [popen_search(*args, runs=runs, env=env)] + [popen_search(*args, "search.role=worker", runs=runs, env=env) for _ in range(2)]
    storage = backends.open_rdb(postgres_url)
    workers = {p.pid for p in procs[1:]}
    trials = _wait_for(storage, "pg", lambda ts: any(t.state == TrialState.RUNNING and _pid_of(t) in workers for t in ts))
    victim = next(_pid_of(t) for t in trials if t.state == TrialState.RUNNING and _pid_of(t) in workers)
    os.kill(victim, signal.SIGKILL)
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == (-signal.SIGKILL if p.pid == victim else 0), out[-2000:]
        assert "pg-s3cret" not in out

    trials = _study(storage, "pg").trials
    _each_once(trials, pd.read_csv(runs / "pg" / "candidates.csv").query("kept").key)
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(killed) == 1 and _pid_of(killed[0]) == victim
    assert killed[0].user_attrs["failure"].startswith("stale: no heartbeat")
    assert "postgres:***@127.0.0.1" in "".join(outputs)  # the storage is named, its password hidden
