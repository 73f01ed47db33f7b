"""Bases of your own from a user's config folder, a stage table in YAML or a PyTorch builder: checked,
searched and analysed."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import yaml

import models.bases
from analysis import common
from models import scaled_spec
from models.bases import BASES
from models.complexity import measure_spec
from models.spec import spec_from_table
from tests.conftest import ROOT, TINY, run_entry, run_module

USER_CONF = ROOT / "examples" / "own_base"  # holds base/tinynet.yaml
NOT_TINYS_BASE = [a for a in TINY if not a.startswith("base=")]
OWN = ["--config-dir", str(USER_CONF), "base=tinynet", *NOT_TINYS_BASE]
BUILT = ["--config-dir", str(ROOT / "examples" / "own_network"), "base=plaincnn", *NOT_TINYS_BASE]  # net.py:build


def as_yaml_table(spec) -> dict:
    """A built-in spec written out as a user would write it in YAML, and read back."""
    table = dataclasses.asdict(spec)
    del table["name"]
    return yaml.safe_load(yaml.safe_dump(table))


@pytest.mark.parametrize("name", ["mobilenetv2", "efficientnet_b0", "resnet50"])
def test_a_yaml_copy_of_a_built_in_base_counts_the_same(name):
    built_in = BASES[name]
    copy = spec_from_table(f"{name}_copy", as_yaml_table(built_in))
    assert dataclasses.replace(copy, name=name) == built_in
    ours, theirs = measure_spec(copy, 64, 10), measure_spec(built_in, 64, 10)
    assert (ours.params, ours.fvcore_flops, ours.activations) == (theirs.params, theirs.fvcore_flops, theirs.activations)


@pytest.mark.parametrize("change, message", [
    (lambda t: t["stages"][1].update(repeats=0), "base.spec.stages[1].repeats=0 must be a whole number >= 1"),
    (lambda t: t["stages"][0].update(block="fancy"), "base.spec.stages[0].block='fancy' is not one of: ds, mbconv"),
    (lambda t: t["stages"][2].update(stride=3), "base.spec.stages[2].stride=3 must be one of: 1, 2"),
    (lambda t: t["stages"][2].update(width=2), "base.spec.stages[2].width is not a field: expected one of block,"),
    (lambda t: t.update(resolution=4), "base.spec.resolution=4 is smaller than the total stride 8"),
    (lambda t: t.pop("stem_channels"), "base.spec lacks stem_channels"),
    (lambda t: t.update(stages=[]), "base.spec.stages must be a non-empty list"),
])
def test_a_bad_stage_table_names_the_stage_and_field(change, message):
    table = yaml.safe_load((USER_CONF / "base" / "tinynet.yaml").read_text())["spec"]
    change(table)
    with pytest.raises(ValueError) as error:
        spec_from_table("tinynet", table)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_every_built_in_base_passes_the_stage_table_checks():
    for name, spec in BASES.items():
        assert spec_from_table(name, as_yaml_table(spec), where=name) == spec


def test_a_bad_stage_table_on_the_command_line_is_one_line_and_writes_nothing(runs):
    result = run_entry(*OWN, "base.spec.stages.1.stride=3", f"runs_dir={runs}")
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: base.spec.stages[1].stride=3 must be one of: 1, 2\n"
    assert not runs.exists()


def test_a_built_in_name_cannot_be_redefined(runs):
    result = run_entry(*OWN, "base.name=resnet18", f"runs_dir={runs}")
    assert result.returncode == 2 and "is a built-in base: give your stage table another name" in result.stderr


def test_a_yaml_base_from_a_user_folder_dry_runs_searches_and_is_analysed(runs, monkeypatch):
    dry = run_entry(*OWN, "search.dry_run=true", "name=dry", f"runs_dir={runs}")
    assert dry.returncode == 0, dry.stderr[-2000:]
    planned = pd.read_csv(runs / "dry" / "candidates.csv")
    assert (planned.base == "tinynet").all() and planned.kept.any()

    search = run_entry(*OWN, "train.epochs=1", "name=own", f"runs_dir={runs}")
    assert search.returncode == 0, search.stderr[-2000:]
    trials = pd.read_csv(runs / "own" / "trials.csv")
    assert (trials.state == "COMPLETE").sum() >= 2 and trials.score.between(0, 1).all()
    assert (runs / "own" / "best.yaml").is_file()

    # Fresh processes know tinynet only from the run's config.yaml: the fidelity check trains it again.
    for command in (["search.fidelity", "--seeds", "1", "--factor", "2", "--top-k", "1"], ["analysis.report"]):
        done = run_module(command[0], runs / "own", *command[1:])
        assert done.returncode == 0, done.stderr[-2000:]
    assert "tinynet" in (runs / "own" / "report.md").read_text()
    assert (runs / "own" / "fidelity.csv").is_file()

    monkeypatch.setattr(models.bases, "BASES", dict(BASES))  # this process's registry, restored after
    with pytest.raises(ValueError, match="base='tinynet' is not one of"):
        scaled_spec("tinynet")
    common.load_config(runs / "own")  # what every analysis script reads first
    assert scaled_spec("tinynet").stem_channels == 16


def test_a_python_builder_outside_the_package_dry_runs_searches_and_is_analysed(runs):
    dry = run_entry(*BUILT, "search.dry_run=true", "name=dry", f"runs_dir={runs}")
    assert dry.returncode == 0, dry.stderr[-2000:]
    planned = pd.read_csv(runs / "dry" / "candidates.csv")
    assert (planned.base == "plaincnn").all() and planned.kept.any()
    assert planned.flops.gt(0).all() and planned[planned.kept].fvcore_flops.gt(0).all()  # fvcore's traces

    search = run_entry(*BUILT, "train.epochs=1", "name=built", f"runs_dir={runs}")
    assert search.returncode == 0, search.stderr[-2000:]
    trials = pd.read_csv(runs / "built" / "trials.csv")
    assert (trials.state == "COMPLETE").sum() >= 2 and trials.score.between(0, 1).all()
    family = yaml.safe_load((runs / "built" / "best.yaml").read_text())["family"]
    assert [row["resolution"] for row in family][0] == 16  # a builder's family is measured at base.resolution
    assert [row["flops"] for row in family] == sorted(row["flops"] for row in family)

    for module, *args in (("search.fidelity", "--seeds", "1", "--factor", "2", "--top-k", "1"), ("analysis.report",)):
        done = run_module(module, runs / "built", *args)  # a fresh process: the builder comes from config.yaml
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("builder, message", [
    ("nowhere_module:build", "base.builder='nowhere_module:build': cannot import nowhere_module"),
    ("examples/own_network/net.py:missing", "base.builder='examples/own_network/net.py:missing': "
     "examples/own_network/net.py has no function missing"),
    ("os.path:join", "base.builder='os.path:join': join must take the keyword arguments depth, width, num_classes"),
    ("build", "base.builder='build' must be package.module:function or path/to/file.py:function"),
])
def test_a_bad_builder_is_one_line_and_writes_nothing(builder, message, runs):
    result = run_entry(*BUILT, f"base.builder={builder}", f"runs_dir={runs}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert not runs.exists()


def test_a_builders_counts_are_fvcores_and_cached(monkeypatch):
    from models import make, own
    from models.complexity import count, measure

    target = "examples/own_network/net.py:build"
    monkeypatch.setitem(own.BUILDERS, "plaincnn_test", own.Builder(target, own.load_function(target), 32))
    first = measure("plaincnn_test", 1.5, 0.5, 24, 10, 3)
    assert first is measure("plaincnn_test", 1.5, 0.5, 24, 10, 3)  # traced once
    assert first == count(make("plaincnn_test", 1.5, 0.5, num_classes=10, in_channels=3), 24, 3)
    assert first.flops < measure("plaincnn_test", 1.5, 1.0, 24, 10, 3).flops


def test_a_builder_file_that_fails_on_import_is_one_line(tmp_path):
    from models.own import load_function

    (tmp_path / "broken.py").write_text("def build(depth, width, num_classes, in_channels):\n    return (\n")
    with pytest.raises(ValueError) as error:
        load_function(f"{tmp_path / 'broken.py'}:build")
    assert "broken.py:build': importing" in str(error.value) and "raised SyntaxError" in str(error.value)
    assert "\n" not in str(error.value)


def test_own_bases_in_an_experiments_series_plan_train_and_are_analysed(runs):
    """examples/own_base/experiment/own_table3.yaml composes tinynet whole into its series, beside
    the built-in mobilenetv2 named as usual; the analysis knows tinynet from config.yaml alone."""
    own_table3 = ["--config-dir", str(USER_CONF), "experiment=own_table3", *NOT_TINYS_BASE, "train.epochs=1",
                  "train.max_images=64", f"runs_dir={runs}", "name=own_table3"]
    search = run_entry(*own_table3)
    assert search.returncode == 0, search.stderr[-2000:]
    points = pd.read_csv(runs / "own_table3" / "candidates.csv")
    assert set(points.base) == {"tinynet", "mobilenetv2"}
    tiny = points[points.base == "tinynet"].set_index("series")
    ratios = tiny.flops / tiny.flops["tinynet_baseline"]
    assert ratios.drop("tinynet_baseline").between(3.4, 4.8).all(), ratios  # solved to 4x, rounding allowing
    config = yaml.safe_load((runs / "own_table3" / "config.yaml").read_text())
    assert config["series"]["tinynet_width"]["base"]["spec"]["stem_channels"] == 16  # the whole table, recorded

    done = run_module("analysis.table3", runs / "own_table3")
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(runs / "own_table3" / "tables" / "table3.csv")
    assert set(table.base) == {"tinynet", "mobilenetv2"} and table.accuracy.between(0, 100).all()  # percent
    assert table.full_size_gflops.gt(0).all()


def test_an_unknown_series_base_says_how_to_use_ones_own(runs):
    result = run_entry("experiment=table3", "series.mobilenetv1_width.base=tinynet", "search.dry_run=true",
                       f"runs_dir={runs}")
    assert result.returncode == 2, result.stderr
    assert "series base='tinynet' is not one of: efficientnet_b0" in result.stderr
    assert "compose it whole with `- /base@series.<series>.base: <option>`" in result.stderr
