"""python -m search.fidelity on a tiny search: re-scoring, reuse, resuming; best.yaml's verdict; bad input."""

from __future__ import annotations

import subprocess

import optuna
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from search import fidelity
from search.runner import run
from search.storage import open_existing
from search.trials.context import cpu_cores
from tests.conftest import compose, run_module

FAST = ["search.pruner=none", "train.max_images=64", "train.bn_images=64"]  # 2 steps per epoch


def fidelity_cli(*args) -> subprocess.CompletedProcess:
    return run_module("search.fidelity", *args)


def exit_code(main, argv) -> int:
    """main's return value, or the code it exits with (argparse's errors exit)."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def fidelity_trials(run_dir) -> list:
    cfg = OmegaConf.load(run_dir / "config.yaml")  # its storage kind: SQLite or journal
    return optuna.load_study(study_name=f"{cfg.name}.fidelity", storage=open_existing(cfg, run_dir)).trials


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("fidelity") / "runs"


@pytest.fixture(scope="module")
def one_seed(runs):
    assert run(compose("name=one", *FAST, runs_dir=runs)) == 0
    return runs / "one"


@pytest.fixture(scope="module")
def two_seeds(runs):
    assert run(compose("name=two", "search.seeds=2", *FAST, runs_dir=runs)) == 0
    return runs / "two"


def test_fidelity_end_to_end_then_rerun_trains_nothing(one_seed):
    done = fidelity_cli(one_seed, "--factor", 2, "--seeds", 2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Kendall tau" in done.stdout and str(one_seed / "fidelity.md") in done.stdout
    assert "--workers 0 (auto): 1 process(es)" in done.stdout and "storage sqlite" in done.stdout  # its only writer
    kept = pd.read_csv(one_seed / "candidates.csv").query("kept")
    table = pd.read_csv(one_seed / "fidelity.csv")
    assert sorted(table.key) == sorted(kept.key)
    assert (table.proxy_n == 2).all() and (table.long_n == 2).all()
    assert table.proxy_mean.between(0, 1).all() and set(table.long_rank) <= {1, 2, 3}
    text = (one_seed / "fidelity.md").read_text()
    assert "Kendall tau between the proxy and the long-budget ranking" in text
    assert "bootstrap 95% interval" in text and "Top-1 regret" in text and "- Leaders: " in text
    assert table.long_leader.dtype == bool and table.long_leader[table.long_rank == 1].all()  # the best leads
    numbers = yaml.safe_load((one_seed / "fidelity.yaml").read_text())  # what bench/evidence.py reads
    assert numbers["n_candidates"] == len(kept) and numbers["budgets_epochs"] == {"proxy": 2, "long": 4}
    assert numbers["seeds"] == 2 and len(numbers["epoch_agreement"]) == 2
    assert numbers["tau"] is None or -1 <= numbers["tau"] <= 1
    assert numbers["regret"] is not None and 0 <= numbers["regret"] <= 1
    assert 1 <= numbers["leaders_long"] <= len(kept) and numbers["leaders_long"] == table.long_leader.sum()
    # seed 0 at the proxy budget comes from the search; seed 1 and both long-budget seeds are trained
    trials = fidelity_trials(one_seed)
    keys = sorted(t.user_attrs["key"] for t in trials)
    assert keys == sorted(f"{k}|{b}|seed={s}" for k in kept.key for b, s in (("proxy", 1), ("long=4", 0), ("long=4", 1)))
    long = [t for t in trials if "|long=4|" in t.user_attrs["key"]]
    assert all(len(t.user_attrs["accuracies"][0]) == 4 and t.user_attrs["epochs"] == 4 for t in long)

    before = (one_seed / "fidelity.csv").read_bytes()
    again = fidelity_cli(one_seed, "--factor", 2, "--seeds", 2)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(fidelity_trials(one_seed)) == len(trials)
    assert (one_seed / "fidelity.csv").read_bytes() == before

    # another factor is another long budget: trained, not read from the 4-epoch trials
    assert fidelity.main([str(one_seed), "--factor", "1.5", "--seeds", "1"]) == 0
    three = [t for t in fidelity_trials(one_seed) if "|long=3|" in t.user_attrs["key"]]
    assert len(three) == len(kept) and all(len(t.user_attrs["accuracies"][0]) == 3 for t in three)
    assert yaml.safe_load((one_seed / "fidelity.yaml").read_text())["budgets_epochs"] == {"proxy": 2, "long": 3}


def test_fidelity_reuses_the_seeds_the_search_completed(two_seeds):
    assert fidelity.main([str(two_seeds), "--factor", "2", "--seeds", "2", "--top-k", "1"]) == 0
    keys = [t.user_attrs["key"] for t in fidelity_trials(two_seeds)]
    assert keys and not [k for k in keys if "|proxy|" in k]  # both proxy seeds came from the search
    assert len(keys) == 2 * 2  # --top-k 1: the best and one other, two long-budget seeds each
    table = pd.read_csv(two_seeds / "fidelity.csv")
    assert len(table) == 2 and (table.proxy_n == 2).all() and (table.long_n == 2).all()
    best = yaml.safe_load((two_seeds / "best.yaml").read_text())
    assert table.key[0] == f"grid:d={best['alpha']:g},w={best['beta']:g},r={best['gamma']:g}"


def test_fidelity_workers_share_a_journal_run(runs, capfd):
    # on the CPU, whose process rule the default --workers 0 is checked against below (a GPU's is one per GPU)
    assert run(compose("name=journal", "storage=journal", "train.device=cpu", *FAST, runs_dir=runs)) == 0
    argv = [str(runs / "journal"), "--factor", "2", "--seeds", "1", "--workers", "2", "--threads", "1"]
    assert fidelity.main(argv) == 0
    table = pd.read_csv(runs / "journal" / "fidelity.csv")
    kept = pd.read_csv(runs / "journal" / "candidates.csv").query("kept")
    assert sorted(table.key) == sorted(kept.key) and (table.long_n == 1).all()
    # The spawned worker (its own log format, on the inherited stderr) opened the fidelity study, not
    # the search's. Whether it trains any of these tiny trials depends on how fast it starts.
    assert "[worker-1] Using an existing study with `study_name='journal.fidelity'`" in capfd.readouterr().err
    # the default, --workers 0, counts processes as search.workers=0 does: up to one per core
    before = len(fidelity_trials(runs / "journal"))
    assert fidelity.main([str(runs / "journal"), "--factor", "2", "--seeds", "2"]) == 0
    out = capfd.readouterr().out
    # at most one process per new training: seed 1 at the long budget, and at the proxy budget
    # unless the search's confirmation already trained it
    count = min(cpu_cores(), len(fidelity_trials(runs / "journal")) - before)
    assert f"--workers 0 (auto): {count} process(es) on {cpu_cores()} core(s)" in out, out
    assert (pd.read_csv(runs / "journal" / "fidelity.csv").long_n == 2).all()


def test_fidelity_on_postgres_with_workers(runs, postgres_url, monkeypatch, capfd):
    """A real PostgreSQL server: the URL comes from the environment (config.yaml hides the password),
    the fidelity study lives beside the search's, and a rerun trains nothing."""
    monkeypatch.setenv("OPTUNA_STORAGE_URL", postgres_url)
    # a name of its own: the session shares one server with the other PostgreSQL tests
    assert run(compose("name=fidelity-pg", "storage=postgres", *FAST, runs_dir=runs)) == 0
    argv = [str(runs / "fidelity-pg"), "--factor", "2", "--seeds", "1", "--workers", "2", "--threads", "1"]
    assert fidelity.main(argv) == 0
    kept = pd.read_csv(runs / "fidelity-pg" / "candidates.csv").query("kept")
    assert sorted(pd.read_csv(runs / "fidelity-pg" / "fidelity.csv").key) == sorted(kept.key)
    trials = optuna.load_study(study_name="fidelity-pg.fidelity", storage=postgres_url).trials
    assert sorted(t.user_attrs["key"] for t in trials) == sorted(f"{k}|long=4|seed=0" for k in kept.key)
    assert fidelity.main(argv) == 0
    assert len(optuna.load_study(study_name="fidelity-pg.fidelity", storage=postgres_url).trials) == len(trials)
    assert "pg-s3cret" not in "".join(capfd.readouterr())


def test_best_yaml_says_how_sure_it_is(one_seed, two_seeds):
    sure = yaml.safe_load((two_seeds / "best.yaml").read_text())
    assert sure["verdict"] in {"separable", "within_noise"}
    assert sure["margin"] >= 0 and sure["margin_noise"] >= 0
    assert sure["runner_up_trial"] != sure["trial"] and sure["runner_up_score"] <= sure["score"]
    assert sure["margin"] == pytest.approx(sure["score"] - sure["runner_up_score"])
    unsure = yaml.safe_load((one_seed / "best.yaml").read_text())
    assert unsure["verdict"] == "no_noise_estimate" and unsure["margin_noise"] is None


def test_bad_input_is_one_line_and_changes_nothing(one_seed, tmp_path, capsys):
    missing = fidelity_cli(tmp_path / "nope")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.startswith("error: ") and len(missing.stderr.strip().splitlines()) == 1

    files = {p: p.read_bytes() for p in one_seed.iterdir()}
    bad = (["--factor", "1"], ["--seeds", "0"], ["--factor", "abc"], ["--workers", "2"], ["--threads", "-1"])
    for args in bad:  # --workers 2: this run is on SQLite, which one process writes at a time
        assert exit_code(fidelity.main, [str(one_seed), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in one_seed.iterdir()} == files

    (tmp_path / "dry").mkdir()
    (tmp_path / "dry" / "config.yaml").write_text("name: dry\n")
    assert fidelity.main([str(tmp_path / "dry")]) == 2
    assert "no candidates.csv" in capsys.readouterr().err
