"""search.confirm_top: the best candidates get more seeds, folded into trials.csv and best.yaml, reused by fidelity."""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState, create_trial

from search import confirm, fidelity
from search.record import TRIAL_COLUMNS
from search.results.tables import images_to_best, search_images, seed_list
from search.runner import run
from tests.conftest import compose

FAST = ["search.pruner=none", "train.max_images=64", "train.bn_images=64"]  # 2 steps per epoch


def trials_csv(*rows) -> pd.DataFrame:
    """A trials.csv table of (number, key, state, seed scores, duplicate_of) rows; other columns empty."""
    records = [dict(number=n, key=key, state=state, series="grid", duplicate_of=dup,
                    score=statistics.fmean(scores) if scores else None, score_std=0.0, seed_scores=scores or None,
                    accuracies=[[s] for s in scores], images_seen=64 * len(scores), train_seconds=1.0, eval_seconds=0.5)
               for n, key, state, scores, dup in rows]
    return pd.DataFrame(records, columns=TRIAL_COLUMNS)


def confirmation_study(scores: dict) -> optuna.Study:
    """An in-memory study holding one completed confirmation trial per (candidate, seed) -> score."""
    study = optuna.create_study(direction="maximize")
    for (candidate, seed), value in scores.items():
        attrs = dict(key=fidelity.trial_key(candidate, "proxy", seed), accuracies=[[0.0, value]], images_seen=64,
                     train_seconds=2.0, eval_seconds=1.0)
        study.add_trial(create_trial(value=value, state=TrialState.COMPLETE, user_attrs=attrs))
    return study


def test_fold_adds_seeds_in_order_up_to_the_first_missing_one():
    trials = trials_csv((0, "A", "COMPLETE", [0.4], None), (1, "B", "COMPLETE", [0.6], None),
                        (2, "C", "PRUNED", [], None), (3, "D", "COMPLETE", [0.6], 1))
    study = confirmation_study({("A", 1): 0.3, ("A", 2): 0.5, ("B", 2): 0.9, ("D", 1): 0.1})
    out = confirm.fold(trials, study, [1, 2]).set_index("key")
    a = out.loc["A"]
    assert seed_list(a.seed_scores) == [0.4, 0.3, 0.5] and a.score == pytest.approx(0.4)
    assert a.score_std == pytest.approx(0.1) and a.images_seen == 192
    assert a.train_seconds == pytest.approx(5.0) and a.eval_seconds == pytest.approx(2.5)
    assert seed_list(a.accuracies) == [[0.4], [0.0, 0.3], [0.0, 0.5]]
    # B lacks seed 1: its seed 2 is not folded in, or seed_scores would stop meaning seeds 0, 1, ...
    assert seed_list(out.loc["B"].seed_scores) == [0.6] and out.loc["B"].score == 0.6
    assert seed_list(out.loc["D"].seed_scores) == [0.6]  # a share search's repeat trained nothing
    assert out.loc["C"].state == "PRUNED" and out.loc["C"].score != out.loc["C"].score  # NaN: untouched
    assert confirm.fold(trials, None, [1, 2]) is trials


def test_search_phase_images_leave_out_the_confirmations_seeds():
    """64 images an epoch: A pruned after 2 epochs; B confirmed, its row holding 3 seeds of 4 epochs;
    C one seed; D failed before training."""
    trials = pd.DataFrame(dict(
        number=[0, 1, 2, 3], images_seen=[128, 768, 256, None],
        accuracies=[[[0.1, 0.2]], [[0.1, 0.2, 0.3, 0.4]] * 3, "[[0.1, 0.2, 0.3, 0.5]]", None]))  # C as trials.csv holds it
    assert search_images(trials, seeds=1).fillna(0).tolist() == [128, 256, 256, 0]
    assert search_images(trials, seeds=2).fillna(0).tolist() == [128, 512, 256, 0]
    assert images_to_best(trials, best_number=1, seeds=1) == 384  # not 896: B's extra seeds came after the search
    assert images_to_best(trials, best_number=3, seeds=1) == 640


def test_unconfirmed_top_names_the_best_that_lack_seeds():
    cfg = SimpleNamespace(search=SimpleNamespace(confirm_top=2, confirm_seeds=3))
    trials = trials_csv((0, "A", "COMPLETE", [0.5, 0.5, 0.5], None), (1, "B", "COMPLETE", [0.45], None),
                        (2, "C", "COMPLETE", [0.3], None), (3, "D", "COMPLETE", [0.9], 0), (4, "E", "PRUNED", [], None))
    assert [c["key"] for c in confirm.unconfirmed_top(trials, cfg)] == ["B"]  # A has its seeds; D is a repeat
    cfg.search.confirm_top = 3
    assert [c["key"] for c in confirm.unconfirmed_top(trials, cfg)] == ["B", "C"]
    cfg.search.confirm_seeds = 1
    assert confirm.unconfirmed_top(trials, cfg) == []


@pytest.mark.parametrize("overrides, seeds", [
    ([], [1, 2]), (["train.seed=5"], [6, 7]), (["search.seeds=2", "search.confirm_seeds=4"], [2, 3]),
    (["search.seeds=3"], []), (["search.confirm_top=0"], []), (["experiment=fig3"], []),
])
def test_extra_seeds(tmp_path, overrides, seeds):
    cfg = compose("search.confirm_top=2", "search.confirm_seeds=3", *overrides, runs_dir=tmp_path)
    assert confirm.extra_seeds(cfg) == seeds


def test_search_confirms_its_best_and_fidelity_reuses_the_seeds(tmp_path, capsys):
    cfg = compose("name=c", "search.confirm_top=2", "search.confirm_seeds=2", *FAST, runs_dir=tmp_path)
    assert run(cfg) == 0
    shown = capsys.readouterr().out
    header = next(line.split() for line in shown.splitlines() if line.split()[:2] == ["number", "state"])
    assert "seeds" in header  # the results table gains the column once a candidate has several seeds
    assert "one-sided Welch t test at 95% asks for" in " ".join(shown.split())  # the verdict's sentence, however wrapped
    run_dir, storage = tmp_path / "c", f"sqlite:///{tmp_path / 'c' / 'study.db'}"
    trials = pd.read_csv(run_dir / "trials.csv")
    seeds = {r.key: seed_list(r.seed_scores) for r in trials.itertuples()}
    ranked = trials.sort_values(["score", "number"], ascending=[False, True])
    assert [len(seeds[k]) for k in ranked.key[:2]] == [2, 2]  # the two best, by their means, have both seeds
    for r in trials.itertuples():
        assert r.score == pytest.approx(statistics.fmean(seeds[r.key]))
        assert r.value == pytest.approx(seeds[r.key][0])  # the Optuna trial keeps its own first seed
    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    assert best["seeds"] == best["runner_up_seeds"] == 2
    assert best["verdict"] in {"separable", "within_noise"} and best["margin_noise"] is not None
    assert (best["verdict"] == "separable") == (best["margin"] > best["margin_needed"] > best["margin_noise"])
    confirmed = {k for k, s in seeds.items() if len(s) == 2}
    checks = optuna.load_study(study_name="c.fidelity", storage=storage).trials
    assert sorted(t.user_attrs["key"] for t in checks) == sorted(f"{k}|proxy|seed=1" for k in confirmed)

    assert run(cfg) == 0  # resumed: nothing trained again
    assert len(optuna.load_study(study_name="c.fidelity", storage=storage).trials) == len(checks)
    assert fidelity.main([str(run_dir), "--factor", "2", "--seeds", "2"]) == 0
    proxy = [t.user_attrs["key"] for t in optuna.load_study(study_name="c.fidelity", storage=storage).trials
             if "|proxy|" in t.user_attrs["key"]]
    assert sorted(proxy) == sorted(f"{k}|proxy|seed=1" for k in trials.key)  # each seed trained once
    assert (pd.read_csv(run_dir / "fidelity.csv").proxy_n == 2).all()


def test_confirmation_added_later_and_stopped_by_the_timeout(tmp_path, caplog, capsys):
    """A finished one-seed search gains confirmations on a rerun; search.timeout, already passed,
    defers them to the next run without training anything or dropping what was scored."""
    assert run(compose("name=t", *FAST, runs_dir=tmp_path)) == 0  # TINY: search.confirm_top=0
    first = pd.read_csv(tmp_path / "t" / "trials.csv")
    confirming = ["name=t", "search.confirm_top=2", "search.confirm_seeds=2", *FAST]
    assert run(compose(*confirming, "search.timeout=0.001", runs_dir=tmp_path)) == 0
    assert "of the best candidates are not confirmed; run the same command again" in caplog.text
    deferred = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert deferred.score.tolist() == first.score.tolist()
    assert yaml.safe_load((tmp_path / "t" / "best.yaml").read_text())["verdict"] == "no_noise_estimate"
    assert "there is no noise estimate: search.confirm_top=2" in " ".join(capsys.readouterr().out.split())
    assert run(compose(*confirming, runs_dir=tmp_path)) == 0
    best = yaml.safe_load((tmp_path / "t" / "best.yaml").read_text())
    assert best["seeds"] == best["runner_up_seeds"] == 2


def test_confirmation_rounds_with_local_workers_train_each_seed_once(tmp_path):
    """storage=journal search.workers=2: a worker process joins each confirmation round."""
    cfg = compose("name=j", "storage=journal", "search.workers=2", "search.confirm_top=2", "search.confirm_seeds=2",
                  *FAST, runs_dir=tmp_path)
    assert run(cfg) == 0
    best = yaml.safe_load((tmp_path / "j" / "best.yaml").read_text())
    assert best["seeds"] == best["runner_up_seeds"] == 2
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j" / "study.journal")))
    keys = [t.user_attrs["key"] for t in optuna.load_study(study_name="j.fidelity", storage=storage).trials]
    assert len(keys) == len(set(keys)) >= 2 and all(k.endswith("|proxy|seed=1") for k in keys)


def test_the_confirmation_context_shares_the_run_and_its_one_prepared_resolution(tmp_path):
    from search.trials.context import load_data, open_context, reopen, run_dir_of

    cfg = compose(runs_dir=tmp_path)
    run_dir_of(cfg).mkdir()  # as search.runner leaves it
    ranges = {"alpha": (1.0, 2.0), "beta": (1.0, 1.5), "gamma": (1.0, 1.5)}
    ctx = open_context(cfg, ranges, load_data(cfg))
    prepared = ctx.data_at(16)
    other = reopen(ctx, fidelity.study_name(cfg.name), ranges, pruner="none")
    assert other.study.study_name == f"{cfg.name}.fidelity" and ctx.study.study_name == cfg.name
    assert other.stats is ctx.stats and other.train_split is ctx.train_split and other.storage is ctx.storage
    assert other.data_at(16) is prepared and ctx._prepared == (None, None)  # handed over, not copied
