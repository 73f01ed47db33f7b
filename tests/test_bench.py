"""The speed benches run end to end: `bash bench/run_all.sh` stops at the first one that fails, and
no other test calls them (limits.py and ablation.py once called throughput.ours with too few arguments)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from search.data import FASHION_MNIST_ROOT
from tests.conftest import ROOT

QUICK = {  # script: (arguments, index of a measured number in its mobilenetv1 row)
    "throughput.py": (["--quick", "--bases", "mobilenetv1"], 1),  # ours img/s
    "limits.py": (["--quick", "--bases", "mobilenetv1"], 3),  # img/s
    "ablation.py": (["--bases", "mobilenetv1", "--steps", "2", "--repeats", "1"], 2),  # default img/s
    "checkpoint.py": (["--bases", "mobilenetv1", "--repeats", "1"], 2),  # save s
}


@pytest.mark.parametrize("script", QUICK)
def test_speed_bench_prints_a_measured_row(script):
    args, column = QUICK[script]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.startswith("mobilenetv1"))
    assert float(row.split()[column]) > 0, row


def test_recipe_bench_trains_each_variant_per_seed():
    tiny = ["train.epochs=1", "train.max_images=64", "train.bn_images=64", "data.synthetic_size=400"]
    args = ["--seeds", "2", "--set", *tiny, "--", "lr 0.01: train.lr=0.01"]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "recipe.py"), *args], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith(("default", "lr"))}
    assert set(rows) == {"default", "lr"}
    assert all(0 <= float(a) <= 1 for a in rows["default"][1:3] + rows["lr"][2:4])
    assert done.stderr.count("seed 1: accuracy by epoch") == 2  # both variants trained seed 1

    wrong = subprocess.run([sys.executable, str(ROOT / "bench" / "recipe.py"), "x: train.lrr=1"], capture_output=True,
                           text=True)
    assert wrong.returncode == 1 and wrong.stderr.strip() == "error: variant 'x': Could not override 'train.lrr'."


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_ROOT), reason="Debian package dataset-fashion-mnist not installed")
def test_recipe_bench_builds_the_base_for_a_real_sets_channels():
    """Fashion-MNIST is grey, where the config's data.channels says 3: the model must follow the data."""
    tiny = ["data=fashion_mnist", "data.num_train=256", "data.num_val=64", "train.epochs=1", "train.max_images=64",
            "train.bn_images=64"]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "recipe.py"), "--seeds", "1", "--set", *tiny],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 0 <= float(next(line for line in done.stdout.splitlines() if line.startswith("default")).split()[1]) <= 1


def bench_script(name: str):
    """bench/<name>.py as a module, loaded from its file (bench/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_budget_split_replay_on_a_table_with_known_answers(tmp_path):
    """A wins on its lucky first seed; B has the better mean. Confirming the top candidate always
    finds B, which the long budget ranks 10 points lower."""
    budget_split = bench_script("budget_split")

    rows = [("A", "proxy", 0, 0.5), ("A", "proxy", 1, 0.1), ("B", "proxy", 0, 0.35), ("B", "proxy", 1, 0.35),
            ("A", "long", 0, 0.9), ("B", "long", 0, 0.8), ("base", "proxy", 0, 0.99), ("base", "long", 0, 0.99)]
    path = tmp_path / "signal.csv"
    path.write_text("key,budget,seed,accuracy\n" + "".join(f"{k},{b},{s},{a}\n" for k, b, s, a in rows))
    results = {r["confirm"]: r for r in budget_split.main([str(path), "--confirm", "0", "1", "2"])}
    assert results[0]["p_proxy_best"] == 0.5 and results[0]["regret_points"] == pytest.approx(5.0)
    assert results[1]["p_proxy_best"] == 1.0 and results[1]["regret_points"] == pytest.approx(10.0)
    assert results[2]["extra_trainings"] == 2 and results[2]["p_proxy_best"] == 1.0


def test_budget_split_until_rule_confirms_the_new_leader_too(tmp_path):
    """A (mean 0.30) and B (0.29) each have one lucky seed; C scores 0.295 on both. When A's and B's
    first seeds are both the lucky ones, confirming A once leaves B's lucky 0.45 on top (the pick);
    --rule until then confirms B too, whose mean drops below A's, and picks A."""
    budget_split = bench_script("budget_split")

    proxy = {"A": (0.5, 0.1), "B": (0.45, 0.13), "C": (0.295, 0.295)}
    long = {"A": 0.9, "B": 0.7, "C": 0.8}
    lines = [f"{k},proxy,{s},{a}\n" for k, seeds in proxy.items() for s, a in enumerate(seeds)]
    path = tmp_path / "signal.csv"
    path.write_text("key,budget,seed,accuracy\n" + "".join(lines) + "".join(f"{k},long,0,{a}\n" for k, a in long.items()))
    once, = budget_split.main([str(path), "--confirm", "1"])
    until, = budget_split.main([str(path), "--confirm", "1", "--rule", "until"])
    assert once["p_proxy_best"] == 0.25 and once["regret_points"] == pytest.approx(10.0) and once["extra_trainings"] == 1
    assert until["p_proxy_best"] == 0.5 and until["regret_points"] == pytest.approx(5.0)
    assert until["extra_trainings"] == pytest.approx(1.5)


def test_evidence_bench_prints_each_goal_from_a_tiny_search(tmp_path):
    """`python bench/evidence.py`, run from another folder: the search, then its fidelity check, then
    one line per goal of issue #13 read back from best.yaml and fidelity.yaml."""
    tiny = ["search.pruner=none", "train.epochs=1", "train.max_images=64", "train.bn_images=64",
            "data.synthetic_size=600", "search.confirm_top=0"]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "evidence.py"), "--runs-dir", str(tmp_path),
                           "--name", "e", "--seeds", "1", "--factor", "2", "--", *tiny],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line[:34].strip(): line[34:] for line in done.stdout.splitlines()}
    assert lines["search wall time"].split()[0].isdigit()
    assert 0 <= float(lines["best accuracy"].split()[0]) <= 1
    assert "goal >= 0.6" in lines["Kendall tau vs 2x budget"]
    assert "goal <= 1 point" in lines["top-1 regret"]
    assert (tmp_path / "e" / "fidelity.md").is_file()
