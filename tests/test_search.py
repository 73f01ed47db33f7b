"""The search end to end on a tiny base and tiny data, with a real SQLite storage."""

from __future__ import annotations

import json
import signal
import weakref

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from search import pruning
from search.storage import queue as st
from search.interrupt import kept_ctrl_c, raise_if_ctrl_c
from search.results.summary import chance_sentence, rising_sentence
from search.runner import run
from tests.conftest import compose, popen_search, run_cli, wait_one_done_one_running

def test_dry_run_writes_candidates_without_training(runs):
    assert run(compose("name=dry", "search.dry_run=true", runs_dir=runs)) == 0
    table = pd.read_csv(runs / "dry" / "candidates.csv")
    assert {"alpha", "beta", "gamma", "d", "w", "r", "resolution", "params", "flops", "activations",
            "formula_ratio", "measured_ratio", "kept"} <= set(table.columns)
    assert table.kept.sum() == 3
    assert not (runs / "dry" / "study.db").exists()


def test_search_end_to_end_then_rerun_runs_nothing(runs):
    cfg = compose("name=e2e", "search.pruner=none", runs_dir=runs)
    assert run(cfg) == 0
    out = runs / "e2e"
    for name in ("candidates.csv", "trials.csv", "best.yaml", "config.yaml", "study.db"):
        assert (out / name).exists(), name
    trials = pd.read_csv(out / "trials.csv")
    kept = pd.read_csv(out / "candidates.csv").query("kept")
    assert sorted(trials.key) == sorted(kept.key)  # every kept candidate exactly once
    assert (trials.state == "COMPLETE").all()
    assert trials.score.between(0, 1).all() and (trials.images_seen > 0).all()

    best = yaml.safe_load((out / "best.yaml").read_text())
    assert f"grid:d={best['alpha']:g},w={best['beta']:g},r={best['gamma']:g}" in set(kept.key)
    assert best["score"] == pytest.approx(trials.score.max())
    assert [row["phi"] for row in best["family"]] == [0, 1, 2, 3, 4]
    (curve,) = json.loads(trials.set_index("number").accuracies[best["trial"]])  # one seed, two epochs
    assert best["last_epoch_gain"] == pytest.approx(curve[1] - curve[0], abs=1e-5)
    flops = [row["flops"] for row in best["family"]]
    assert flops == sorted(flops) and flops[1] / flops[0] == pytest.approx(best["measured_ratio"], rel=0.5)

    before = (out / "trials.csv").read_text()
    assert run(cfg) == 0  # the same command again: everything is done already
    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == len(kept)
    assert (out / "trials.csv").read_text() == before


def test_the_terminal_warns_when_the_best_was_still_rising():
    best = {"seeds": 3, "score_std": 0.01, "last_epoch_gain": 0.025}
    assert "still added 2.5 points, more than its seed std" in rising_sentence(best, "runs/x")
    assert rising_sentence({**best, "last_epoch_gain": 0.005}, "runs/x") is None  # levelled off, within noise
    assert rising_sentence({**best, "last_epoch_gain": None}, "runs/x") is None  # one epoch: nothing measured
    one_seed = {"seeds": 1, "score_std": 0.0, "last_epoch_gain": 0.005}
    assert rising_sentence(one_seed, "runs/x") is None  # one seed: a point is the bar
    assert "more than one point:" in rising_sentence({**one_seed, "last_epoch_gain": 0.02}, "runs/x")


def test_the_terminal_warns_of_candidates_scored_at_chance():
    trials = pd.DataFrame({"state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"], "score": [0.356, 0.12, None, 0.13]})
    # 10 classes on 1000 images: chance 0.10 with a binomial standard error of 0.0095, so 3 of them reach 0.128
    assert chance_sentence(trials, 10, 1000).startswith("1 of 3 scored candidates are at most 3 binomial standard errors above chance")
    assert chance_sentence(trials, 10, 100).startswith("2 of 3")  # fewer images: wider noise (0.19)
    assert chance_sentence(trials, 2, 1000).startswith("3 of 3")  # two classes: none is above guessing
    assert chance_sentence(trials[:1], 10, 1000) is None


def test_the_default_storage_and_process_count(runs):
    """What a plain `python run_search.py` does: a journal study, and search.workers=0 chosen as one
    process per core (train.threads=1 here), at most one per candidate, memory allowing. On the CPU:
    with train.device=auto a GPU machine would run one process per GPU."""
    from search.trials.context import cpu_cores

    result = run_cli("name=auto", "storage=journal", "search.workers=0", "search.pruner=none", "train.device=cpu",
                     runs_dir=runs)
    assert result.returncode == 0, result.stderr[-2000:]
    out = runs / "auto"
    chosen = yaml.safe_load((out / "config.yaml").read_text())["search"]["workers"]
    assert chosen == min(cpu_cores(), 3)  # the tiny search's processes need far less than this machine has
    assert f"search.workers=0 (auto): {chosen} process(es) on {cpu_cores()} core(s)" in (out / "search.log").read_text()
    assert (out / "study.journal").is_file() and not (out / "study.db").exists()
    trials = pd.read_csv(out / "trials.csv")
    assert (trials.state == "COMPLETE").all() and sorted(trials.key) == sorted(pd.read_csv(out / "candidates.csv").query("kept").key)


def test_ctrl_c_then_resume_runs_only_what_was_not_finished(runs):
    db = runs / "intr" / "study.db"
    storage = f"sqlite:///{db}"
    slow = ["name=intr", "search.pruner=none", "train.epochs=6"]
    proc = popen_search(*slow, runs=runs)
    wait_one_done_one_running(db, proc)
    proc.send_signal(signal.SIGINT)
    assert proc.communicate(timeout=60) and proc.returncode != 0
    done_before = {
        t.user_attrs["key"] for t in optuna.load_study(study_name="intr", storage=storage).trials
        if t.state == TrialState.COMPLETE
    }
    assert done_before

    result = run_cli(*slow, runs_dir=runs)
    assert result.returncode == 0, result.stderr[-2000:]
    trials = optuna.load_study(study_name="intr", storage=storage).trials
    complete = [t.user_attrs["key"] for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(complete) == sorted(set(complete))  # nothing twice
    assert len(complete) == 3
    finished_first = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs["key"] in done_before]
    assert len(finished_first) == len(done_before)  # finished trials were kept, not re-run
    assert any(t.state == TrialState.FAIL and "interrupted" in t.user_attrs.get("failure", "") for t in trials)


def test_a_trial_interrupted_mid_training_resumes_from_its_last_epoch(runs, monkeypatch):
    """Ctrl-C after a trial's second of three epochs; the same command again trains only its third
    epoch, and every score equals that of a search never interrupted (CPU training is deterministic)."""
    from search.checkpoint import Checkpoint

    args = ("search.pruner=none", "train.epochs=3", "search.seeds=1")
    assert run(compose("name=whole", *args, runs_dir=runs)) == 0
    saved, real_save = [], Checkpoint.save

    def save_then_press_ctrl_c(self, parts, generator, result):
        real_save(self, parts, generator, result)
        saved.append(self.path)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "save", save_then_press_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run(compose("name=cut", *args, runs_dir=runs))
    assert [p.name for p in (runs / "cut" / "checkpoints").iterdir()] == [saved[0].name]

    saved.clear()
    monkeypatch.setattr(Checkpoint, "save", lambda self, *a: saved.append(self.path) or real_save(self, *a))
    assert run(compose("name=cut", *args, runs_dir=runs)) == 0
    assert len(saved) == 1 + 2 * 3  # the interrupted candidate's third epoch, then the two others
    whole, cut = (pd.read_csv(runs / name / "trials.csv").query("state == 'COMPLETE'").set_index("key").sort_index()
                  for name in ("whole", "cut"))
    assert list(cut.accuracies) == list(whole.accuracies) and (cut.images_seen == whole.images_seen).all()
    assert not (runs / "cut" / "checkpoints").exists()  # every trial settled: no state left behind


def test_pruned_trials_record_what_they_cost(runs, monkeypatch):
    # A real Optuna pruner that stops every trial after its first epoch.
    monkeypatch.setattr(pruning, "make_pruner", lambda *a: optuna.pruners.ThresholdPruner(lower=1.1))
    assert run(compose("name=pr", "train.epochs=3", runs_dir=runs)) == 0
    trials = pd.read_csv(runs / "pr" / "trials.csv")
    assert (trials.state == "PRUNED").all() and len(trials) == 3
    assert (trials.images_seen == 256).all()  # one epoch: 270 training images -> 8 batches of 32
    assert (trials.train_seconds > 0).all() and (trials.eval_seconds > 0).all()
    assert all(len(yaml.safe_load(a)[0]) == 1 for a in trials.accuracies)  # the curve up to the pruning
    assert not (runs / "pr" / "best.yaml").exists()  # nothing completed: no best to name


@pytest.mark.parametrize("name", ["median", "halving", "hyperband"])
def test_pruners_prune_a_weak_candidate(tmp_path, name):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p.db'}")
    study = st.open_study(storage, "p", pruning.make_pruner(name, startup_trials=1, max_steps=3))
    params = lambda rec: {"alpha": rec["alpha"]}  # noqa: E731
    records = [{"key": f"k{i}", "alpha": 1.0 + i / 10} for i in range(4)]
    assert st.enqueue_missing(study, records, params) == 4
    assert st.enqueue_missing(study, records, params) == 0  # enqueued once only
    for strong in range(3):
        trial = st.claim(study, storage)
        for step in (1, 2, 3):  # as the runner does: report, then ask the pruner
            trial.report(0.8 + 0.01 * step + 0.001 * strong, step)
            assert not trial.should_prune()
        study.tell(trial, 0.82)
    weak = st.claim(study, storage)
    weak.report(0.05, 1)
    assert weak.should_prune()
    assert st.claim(study, storage) is None


def test_median_pruner_warmup_counts_epochs(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'w.db'}")
    study = st.open_study(storage, "w", pruning.make_pruner("median", startup_trials=1, max_steps=3, warmup_steps=1))
    st.enqueue_missing(study, [{"key": "a", "alpha": 1.0}, {"key": "b", "alpha": 1.1}], lambda r: {"alpha": r["alpha"]})
    strong = st.claim(study, storage)
    for step in (1, 2, 3):
        strong.report(0.8, step)
    study.tell(strong, 0.8)
    weak = st.claim(study, storage)
    weak.report(0.05, 1)
    assert not weak.should_prune()  # the first epoch is the warm-up
    weak.report(0.05, 2)
    assert weak.should_prune()


def test_bad_config_value_exits_with_one_line(runs):
    result = run_cli("name=bad", "train.epochs=0", runs_dir=runs)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: train.epochs=0 must be > 0"
    assert not (runs / "bad").exists()


def test_infeasible_grid_names_the_closest_product(runs):
    result = run_cli("name=nogrid", "search.tolerance=0", "search.beta.max=1", "search.gamma.max=1",
                     "search.alpha.max=1.5", "search.alpha.step=0.5", runs_dir=runs)
    assert result.returncode == 2
    assert "the closest is 1.5000 at (1.5, 1.0, 1.0)" in result.stderr


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not __import__("os").path.isdir(FASHION), reason="Debian's dataset-fashion-mnist is not installed")
def test_search_on_real_fashion_mnist(runs):
    cfg = compose("name=fm", "data=fashion_mnist", "data.num_train=512", "data.num_val=256",
                  "base.resolution=28", "search.pruner=none", runs_dir=runs)
    assert run(cfg) == 0
    trials = pd.read_csv(runs / "fm" / "trials.csv")
    candidates = pd.read_csv(runs / "fm" / "candidates.csv")
    assert (trials.state == "COMPLETE").all() and len(trials) == candidates.kept.sum()
    assert set(candidates.resolution) == {28, 42}  # gamma 1 and 1.5 at a 28 px base
    assert trials.score.max() > 0.2  # 10 classes: well above chance even after 2 tiny epochs


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the swallowed one
def test_a_ctrl_c_swallowed_by_a_weakref_callback_is_raised_again():
    class Model:
        pass

    with kept_ctrl_c():
        model = Model()
        ref = weakref.ref(model, lambda _: (signal.raise_signal(signal.SIGINT), sum(range(1000))))
        del model  # the callback runs; Python prints "Exception ignored" and drops the KeyboardInterrupt
        assert ref() is None
        with pytest.raises(KeyboardInterrupt):
            raise_if_ctrl_c()
    raise_if_ctrl_c()  # nothing is left pending after the block
