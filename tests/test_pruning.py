"""Pruning decides only at epochs measured to rank as the final score does; the objective is named."""

from __future__ import annotations

import math

import optuna
import pytest

from search.pruning import AgreementGate, make_pruner
from search.storage import queue as st


def study_with_finished(tmp_path, curves: list[list[float]], gate: float):
    """A real SQLite study whose finished trials followed `curves` (final score = last value)."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'g.db'}")
    study = st.open_study(storage, "g", make_pruner("median", startup_trials=1, max_steps=3, min_agreement=gate))
    records = [{"key": f"k{i}", "alpha": 1.0 + i / 10} for i in range(len(curves) + 1)]
    st.enqueue_missing(study, records, lambda rec: {"alpha": rec["alpha"]})
    for curve in curves:
        trial = st.claim(study, storage)
        for step, accuracy in enumerate(curve, start=1):
            trial.report(accuracy, step)
        study.tell(trial, curve[-1])
    return study, st.claim(study, storage)


# Epoch 1 ranks the three finished candidates in the reverse of their final order; epoch 2 as it.
CROSSING = [[0.30, 0.40, 0.50], [0.20, 0.50, 0.60], [0.10, 0.60, 0.70]]


def test_measured_agreement_per_epoch(tmp_path):
    study, _ = study_with_finished(tmp_path, CROSSING, gate=0.6)
    gate = study.pruner
    assert isinstance(gate, AgreementGate)
    assert gate.agreement(study, 1) == (pytest.approx(-1.0), 3)
    assert gate.agreement(study, 2) == (pytest.approx(1.0), 3)


def test_no_pruning_at_an_epoch_that_ranks_against_the_final_score(tmp_path):
    _, weak = study_with_finished(tmp_path, CROSSING, gate=0.6)
    weak.report(0.01, 1)
    assert not weak.should_prune()  # far below the median, but epoch 1 has been measured to mislead
    weak.report(0.01, 2)
    assert weak.should_prune()  # epoch 2 agrees with the end: the median pruner decides


def test_ungated_median_prunes_at_the_misleading_epoch(tmp_path):
    _, weak = study_with_finished(tmp_path, CROSSING, gate=0.0)
    weak.report(0.01, 1)
    assert weak.should_prune()  # what the gate prevents


def test_no_pruning_before_three_candidates_finish(tmp_path):
    _, weak = study_with_finished(tmp_path, CROSSING[1:], gate=0.6)  # two finished, in agreement
    weak.report(0.01, 2)
    assert not weak.should_prune()


def test_ties_are_no_agreement(tmp_path):
    flat = [[0.5, 0.4, 0.5], [0.5, 0.5, 0.6], [0.5, 0.6, 0.7]]  # epoch 1 tells nothing apart
    study, weak = study_with_finished(tmp_path, flat, gate=0.6)
    assert math.isnan(study.pruner.agreement(study, 1)[0])
    weak.report(0.01, 1)
    assert not weak.should_prune()


@pytest.mark.parametrize("gate", [0.0, 0.6])
def test_a_candidate_trained_to_the_last_epoch_is_never_pruned(tmp_path, gate):
    _, weak = study_with_finished(tmp_path, CROSSING, gate=gate)
    for step in (1, 2, 3):  # max_steps=3: the last report is the end of training
        weak.report(0.5 if step < 3 else 0.01, step)
    assert not weak.should_prune()  # it gets its (poor) score instead of being thrown away


def test_the_objective_is_named(tmp_path):
    study, _ = study_with_finished(tmp_path, CROSSING[:1], gate=0.0)
    assert study.metric_names == [st.METRIC] == ["accuracy"]  # optuna-dashboard's label, not "Objective 0"
