"""The command line behaves as any Hydra 1.3 app's, and a run's terminal output stays readable."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, pythonpath, run_cli, run_entry


@pytest.mark.parametrize("flags", [["--cfg", "job"], ["-c", "job"], ["-cn", "config", "--cfg", "job"]])
def test_cfg_prints_the_config_and_trains_nothing(flags, runs):
    result = run_entry(*flags, f"runs_dir={runs}")
    assert result.returncode == 0, result.stderr
    assert "\nbase:\n" in result.stdout and "Traceback" not in result.stderr
    assert not runs.exists()  # printed, not run


def test_package_flag_shows_one_group():
    result = run_entry("-c", "job", "-p", "base", "base=resnet18")
    assert result.returncode == 0, result.stderr
    assert "name: resnet18" in result.stdout and "train:" not in result.stdout


def test_info_config():
    result = run_entry("--info", "config")
    assert result.returncode == 0, result.stderr
    assert "Config" in result.stdout and "base" in result.stdout


def test_shell_completion_query_without_a_shell():
    result = run_entry("-sc", "query=bash")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "base=" in result.stdout


def test_shell_completion_query_from_a_folder_with_a_hyphen(tmp_path):
    """Hydra's pattern for `python <script>` stops at a '-' in the path (a clone in `my-clone/`)."""
    (tmp_path / "my-clone").symlink_to(ROOT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=pythonpath())
    env.pop("COMP_LINE", None)
    result = subprocess.run([sys.executable, str(tmp_path / "my-clone" / "run_search.py"), "-sc", "query=bash"],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "base=" in result.stdout


def test_shell_completion_without_a_subcommand_is_one_line():
    result = run_entry("--shell-completion")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --shell-completion takes one of install=SHELL")
    assert result.stderr.count("\n") == 1


def test_unknown_top_level_key_is_one_line(runs):
    result = run_entry("foo=1", f"runs_dir={runs}")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: foo=1: no key 'foo'") and result.stderr.count("\n") == 1
    assert "base, data, train, search" in result.stderr  # what exists there
    assert not runs.exists()


@pytest.mark.parametrize("launcher, package", [("submitit_slurm", "hydra-submitit-launcher"),
                                               ("joblib", "hydra-joblib-launcher")])
def test_missing_launcher_names_its_pip_package(launcher, package):
    result = run_entry("--multirun", f"hydra/launcher={launcher}", "name=a,b")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: hydra/launcher={launcher!r} is not installed: pip install {package}\n"


@pytest.fixture(scope="module")
def tiny_run():
    with tempfile.TemporaryDirectory(prefix="cli") as folder:  # a short path: the plan names the run folder
        runs = Path(folder) / "runs"
        result = run_cli("name=tiny", "search.pruner=none", runs_dir=runs)
        assert result.returncode == 0, result.stderr[-2000:]
        yield result, runs / "tiny"


def test_optuna_messages_reach_search_log(tiny_run):
    result, out = tiny_run
    log = (out / "search.log").read_text()
    assert "][optuna.storages._rdb.storage][INFO] - A new study created in RDB with name: tiny" in log
    assert "A new study created" not in result.stderr  # not through Optuna's own handler
    shown = [line for line in result.stdout.splitlines() if "A new study created" in line]
    assert shown == ["A new study created in RDB with name: tiny"]  # once, as the project's lines are shown


def test_plan_is_short_and_clean(tiny_run):
    result, out = tiny_run
    lines = result.stdout.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("every grid point: "))
    plan = lines[:end + 1]
    assert plan[0].split() == ["alpha", "beta", "gamma", "resolution", "MFLOPs", "measured_ratio"]
    assert len(plan) == 3 + 3  # a header, the 3 kept candidates, the count, where the rest is
    assert plan[-1] == f"every grid point: {out / 'candidates.csv'}"
    for line in plan:
        assert len(line) <= 100 and "NaN" not in line and "<NA>" not in line, line


def test_summary_prints_whole_numbers_as_integers_within_80_columns(tiny_run):
    result, _ = tiny_run
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["number", "state"])
    header = lines[start].split()
    assert "series" not in header  # a grid search: every row's series is "grid"
    for line in lines[start:]:  # the table and the margin sentence; the two lines ending in a path may be longer
        assert len(line) <= 80 or line.startswith(("best: ", "done in ")), line
    for line in lines[start + 1:start + 4]:
        row = dict(zip(header, line.split()))
        assert row["images"].isdigit() and row["number"].isdigit() and row["resolution"].isdigit(), line
    # 2 training steps on 300 images: every candidate is at chance, with 30 validation images to tell
    assert "3 of 3 scored candidates are at most 3 binomial standard errors above chance (10% on 10 classes, 30 " \
        "validation images)" in " ".join(lines[start:])


def test_upsampling_beyond_the_stored_images_is_warned(runs):
    result = run_cli("search.dry_run=true", "data.native_size=16", runs_dir=runs)  # candidates of up to 24 px
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: candidates of up to 24 px are upsampled from the data's 16 px images" in result.stdout


@pytest.mark.parametrize("experiment", [[], ["experiment=fig8"]])
def test_gpu_preset_replaces_the_cpu_budget_also_of_an_experiment(experiment):
    """An experiment's train block holds its CPU budget; preset=gpu comes after it and wins."""
    from hydra import compose, initialize_config_dir

    from search.config import register

    register()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*experiment, "preset=gpu"])
    t = cfg.train
    assert (t.epochs, t.max_images, t.batch_size, t.optimizer, t.device) == (8, None, 256, "sgd", "cuda")
    assert cfg.base.width == 1.0
    assert cfg.base.name == ("efficientnet_b0" if experiment else "mobilenetv2")
