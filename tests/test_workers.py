"""Several processes on one study: each candidate is trained exactly once."""

from __future__ import annotations

import collections
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from optuna.storages.journal import JournalFileBackend

from search import runner
from search.config import ConfigError
from tests.conftest import ROOT, TINY, compose

def _popen(*overrides, runs):
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run_search.py"), *TINY, f"runs_dir={runs}", *overrides],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_coordinator_and_worker_on_a_journal_storage(runs):
    common = ["name=two", "storage=journal", "search.pruner=none", "train.epochs=4"]
    coordinator = _popen(*common, runs=runs)
    worker = _popen(*common, "search.role=worker", runs=runs)
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
