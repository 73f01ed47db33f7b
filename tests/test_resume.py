"""A resume (or a joining worker) whose settings would change a score is refused before it writes
anything; settings that only change how or where candidates are scored may change."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend

import run_search
from search import fingerprint
from search.config import ConfigError
from search.runner import run
from tests.conftest import TINY, compose, run_cli
from tests.test_bad_input import snapshot

V2 = ["base=mobilenetv2", "name=v2", "storage=journal", "search.pruner=none", "train.epochs=1"]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """The runs folder of a finished tiny MobileNetV2 search `v2` on a journal storage."""
    runs = tmp_path_factory.mktemp("resume") / "runs"
    assert run(compose(*V2, runs_dir=runs)) == 0
    return runs


def journal_study(runs, name="v2") -> optuna.Study:
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(runs / name / "study.journal")))
    return optuna.load_study(study_name=name, storage=storage)


CHANGED = [  # (overrides after V2, what the one line must name)
    (["train.lr=0.1"], "(train.lr: 0.003 -> 0.1, the run's value first)"),
    (["base=resnet18"], "(base.name: mobilenetv2 -> resnet18, "),
    (["data.seed=1", "search.alpha.max=3"], "(data.seed: 0 -> 1; search.alpha.max: 2.0 -> 3.0, "),
    (["experiment=fig4"], "(series.d1_r1: (absent) -> {...}; series.d1_r1.3: (absent) -> {...}; "
                          "series.d2_r1: (absent) -> {...} and 2 more, "),  # and train.max_images
    (["search.role=worker", "train.label_smoothing=0"], "(train.label_smoothing: 0.1 -> 0.0, "),
    (["search.dry_run=true", "train.epochs=2"], "(train.epochs: 1 -> 2, "),
]


@pytest.mark.parametrize("overrides,named", CHANGED, ids=[" ".join(c[0]) for c in CHANGED])
def test_a_changed_score_setting_is_refused_in_one_line_and_nothing_changes(overrides, named, earlier, capsys):
    before, attrs = snapshot(earlier), journal_study(earlier).user_attrs
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_search.cli([*TINY, f"runs_dir={earlier}", *V2, *overrides])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert err.startswith("error: name=v2 was scored with other settings than this command's ") and "\n" not in err
    assert named in err and err.endswith("use a new name= for these settings, or the run's own (its config.yaml)")
    assert snapshot(earlier) == before  # no file of runs/v2 written or touched, the study included
    assert journal_study(earlier).user_attrs == attrs


def test_another_base_on_a_mobilenetv2_run_is_refused_as_a_real_process(earlier):
    before = snapshot(earlier)
    result = run_cli(*V2, "base=resnet18", runs_dir=earlier)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
    assert result.stderr.startswith("error: name=v2 was scored with other settings")
    assert "base.name: mobilenetv2 -> resnet18" in result.stderr
    assert snapshot(earlier) == before
    assert {t.user_attrs["base"] for t in journal_study(earlier).trials} == {"mobilenetv2"}


def test_settings_that_change_no_score_may_change(earlier):
    study = journal_study(earlier)
    trials, attrs = len(study.trials), study.user_attrs
    free = ["train.threads=2", "search.workers=2", "search.pruner=median", "search.max_attempts=3", "search.seeds=2",
            "storage.heartbeat_interval=2", "storage.grace_period=5", "train.device=cpu", "train.precision=fp32"]
    result = run_cli(*V2, *free, runs_dir=earlier)
    assert result.returncode == 0, result.stderr[-2000:]
    study = journal_study(earlier)
    assert len(study.trials) == trials  # every candidate was done: nothing trained again
    assert study.user_attrs == attrs  # the record is the first run's
    assert json.loads(attrs[fingerprint.ATTR]) == fingerprint.score_settings(compose(*V2, runs_dir=earlier))


def test_a_study_made_before_the_record_is_accepted_and_gets_one(runs):
    old = ["name=old", "search.pruner=none", "train.epochs=1", "search.max_candidates=1"]
    assert run(compose(*old, runs_dir=runs)) == 0
    db = runs / "old" / "study.db"
    with closing(sqlite3.connect(db)) as con, con:  # as a study of the version before the record
        con.execute("DELETE FROM study_user_attributes WHERE key LIKE 'score_settings%'")
    study = optuna.load_study(study_name="old", storage=f"sqlite:///{db}")
    assert fingerprint.ATTR not in study.user_attrs and len(study.trials) == 1

    assert run(compose(*old, "search.max_attempts=3", runs_dir=runs)) == 0
    assert "study 'old' has no record of the settings it was scored with" in (runs / "old" / "search.log").read_text()
    study = optuna.load_study(study_name="old", storage=f"sqlite:///{db}")
    assert len(study.trials) == 1
    assert study.user_attrs[fingerprint.HASH_ATTR] == fingerprint.digest(fingerprint.score_settings(compose(*old, runs_dir=runs)))
    with pytest.raises(ConfigError, match=r"\(train.lr: 0.003 -> 0.1, "):  # from now on it is checked
        run(compose(*old, "train.lr=0.1", runs_dir=runs))


def test_score_settings_and_their_differences():
    cfg = compose(runs_dir="runs")
    settings = fingerprint.score_settings(cfg)
    assert settings["train"]["lr"] == 0.003 and settings["base"]["name"] == "resnet18"
    assert "threads" not in settings["train"] and "device" not in settings["train"]
    assert set(settings["search"]) == set(fingerprint.GRID)  # not the pruner, seeds, workers or attempts
    assert fingerprint.score_settings(compose("train.threads=2", "search.workers=3", "storage=journal",
                                              "search.pruner=hyperband", runs_dir="other")) == settings

    old = {"train": {"lr": 0.05, "epochs": 4}, "series": {}, "base": {"name": "mobilenetv2"}}
    new = {"train": {"lr": 0.1, "epochs": 4}, "series": {"a": {"w": [1.0, 1.4]}}, "base": {"name": "resnet18"}}
    diffs = fingerprint.differences(old, new)
    assert diffs == ["base.name: mobilenetv2 -> resnet18", "series.a: (absent) -> {...}", "train.lr: 0.05 -> 0.1"]
    assert fingerprint.differences(new, new) == []
    line = fingerprint.refusal("x", diffs + ["train.epochs: 4 -> 8", "train.seed: 0 -> 1"])
    assert "train.lr: 0.05 -> 0.1 and 2 more, the run's value first" in line and "\n" not in line


def test_a_timed_out_search_leaves_the_rest_queued_and_the_same_command_goes_on(tmp_path):
    """search.timeout: no candidate is claimed once it has passed (here: before the first), the
    results of what finished are written, and the command without the limit trains the rest once."""
    runs, args = tmp_path / "runs", ["name=t", "search.pruner=none", "train.epochs=1"]

    def states():
        trials = optuna.load_study(study_name="t", storage=f"sqlite:///{runs / 't' / 'study.db'}").trials
        return sorted(t.state.name for t in trials), [t.user_attrs["key"] for t in trials if t.state.name == "COMPLETE"]

    assert run(compose(*args, "search.timeout=1e-6", runs_dir=runs)) == 0
    first, _ = states()
    assert first == ["WAITING"] * len(first) and len(first) >= 2
    assert f"search.timeout=1e-06 s: {len(first)} candidate(s) still queued; run the same command again" in (
        runs / "t" / "search.log").read_text()
    assert (runs / "t" / "trials.csv").is_file() and not (runs / "t" / "best.yaml").exists()
    assert run(compose(*args, runs_dir=runs)) == 0  # the timeout changes no score: the same study goes on
    final, done = states()
    assert final == ["COMPLETE"] * len(first) and len(set(done)) == len(done)
    assert (runs / "t" / "best.yaml").is_file()
