"""Every analysis script on tiny recorded runs: files produced, columns and values checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import open_dict

from analysis import common, family, fig3, fig4, fig8, latency, report, rules, search, table3
from search.runner import run
from tests.conftest import ROOT, compose

FAST = ["train.epochs=1", "search.pruner=none", "train.max_images=64", "train.bn_images=64"]  # 2 steps an epoch
TINY_BASE = {"width": 0.25, "resolution": 16}  # TINY's proxy size, for a series that names its own base


def own_base(experiment: str) -> str:
    """The base conf/experiment/<experiment>.yaml chooses, else the config's default."""
    for conf in (ROOT / "conf" / "experiment" / f"{experiment}.yaml", ROOT / "conf" / "config.yaml"):
        for entry in yaml.safe_load(conf.read_text()).get("defaults", []):
            if isinstance(entry, dict) and {"override /base", "base"} & entry.keys():
                return entry.get("override /base", entry.get("base"))
    raise AssertionError(f"no base for {experiment}")


def experiment_run(runs, experiment, *overrides, series_bases=False) -> Path:
    """A tiny run of `experiment` on its own bases: the experiment's (or, with series_bases, each
    series' own) at TINY's width, resolution and data, one epoch; checked in config.yaml and candidates.csv."""
    cfg = compose(f"experiment={experiment}", f"name={experiment}", *FAST, *overrides, runs_dir=runs, own_base=True)
    with open_dict(cfg):
        for spec in cfg.series.values() if series_bases else ():
            spec.base = {"name": spec.base if isinstance(spec.base, str) else spec.base.name, **TINY_BASE}
    assert run(cfg) == 0
    run_dir = runs / experiment
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["base"] == {**config["base"], "name": own_base(experiment), **TINY_BASE}
    bases = set(pd.read_csv(run_dir / "candidates.csv").base)
    assert bases == ({s["base"]["name"] for s in config["series"].values()} if series_bases else {own_base(experiment)})
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def fig8_run(runs):
    return experiment_run(runs, "fig8", "series.compound.phi=[0,1,2]", "search.seeds=2")


@pytest.fixture(scope="module")
def family_run(runs):
    return experiment_run(runs, "family", "series.family.phi=[-1,0,1,2]")  # -1: smaller than the base


@pytest.fixture(scope="module")
def table3_run(runs):
    return experiment_run(runs, "table3", series_bases=True)


@pytest.fixture(scope="module")
def search_run(runs):
    assert run(compose("name=grid", *FAST, runs_dir=runs)) == 0
    return runs / "grid"


def outputs(run_dir, name, figures=("",)):
    files = [run_dir / "figures" / f"{name}{suffix}.{ext}" for suffix in figures for ext in ("png", "pdf")]
    files += [run_dir / "tables" / f"{name}.{ext}" for ext in ("csv", "md")]
    missing = [f for f in files if not f.is_file() or f.stat().st_size == 0]
    assert not missing, missing
    return pd.read_csv(run_dir / "tables" / f"{name}.csv")


def scores(run_dir) -> dict:
    trials = pd.read_csv(run_dir / "trials.csv")
    return dict(zip(trials.key, 100 * trials.score))


def test_a_figure_title_names_the_data_its_chance_level_the_budget_and_the_seeds():
    config = {"data": {"name": "fashion_mnist"}, "train": {"epochs": 3, "max_images": 1536}, "search": {"seeds": 3}}
    title = common.title_of(config, pd.DataFrame({"num_classes": [10, 10]}), "Fig. 3")
    assert title == "Fig. 3: proxy on fashion_mnist, chance 10% (3 epochs x 1536 images, mean ± std over 3 seeds)"
    assert "chance 1%" in common.title_of(config, pd.DataFrame({"num_classes": [100]}), "x")


def test_point_labels_keep_clear_of_close_neighbours_and_of_the_line():
    # Fig. 3's width line on Fashion-MNIST: w=1 and w=1.4 are 1.5 MFLOPs apart, the second lower
    xs, ys = [3.8, 5.3, 8.8, 15.6, 29.6, 51.0], [69.6, 68.7, 71.3, 73.3, 73.6, 73.4]
    assert common.label_places(xs, ys) == [
        (-1, True),   # w=1: away from its close right neighbour, above the falling segment
        (1, False),   # w=1.4: toward the wider gap, below the rising segment
        (1, False), (1, False),
        (1, True),    # w=3.8: the line falls to w=5
        (1, False),   # the last point: outside the line, on the side away from w=3.8, which is higher
    ]
    assert common.label_places([1.0], [0.5]) == [(1, True)]


def test_points_join_each_series_point_to_its_one_trial(fig8_run):
    points = common.load_points(fig8_run)
    assert len(points) == 4 * 3 and points.key.nunique() < len(points)  # the base is shared by all four lines
    assert len(pd.read_csv(fig8_run / "trials.csv")) == points.key.nunique()  # ... and trained once
    assert (points.state == "COMPLETE").all()
    assert points.accuracy.tolist() == pytest.approx([scores(fig8_run)[k] for k in points.key])


def test_an_experiment_trains_its_largest_points_first(fig8_run):
    trials = pd.read_csv(fig8_run / "trials.csv").sort_values("number")
    assert trials.flops.is_monotonic_decreasing and trials.flops.nunique() > 1


def test_fig8_table_reports_targets_and_errors(fig8_run):
    assert fig8.main([str(fig8_run)]) == 0
    table = outputs(fig8_run, "fig8", figures=("", "_cost"))
    assert list(table.columns) == fig8.COLUMNS
    solved = table[table.series != "compound"]
    assert solved.target_error_pct.tolist() == pytest.approx((100 * (solved.flops / solved.target_flops - 1)).round(2).tolist())
    compound = table[table.series == "compound"].flops.tolist()
    for series in ("depth", "width", "resolution"):
        assert table[table.series == series].target_flops.tolist() == compound
    assert (table.latency_ms > 0).all() and (fig8_run / latency.LATENCY_FILE).is_file()


def test_fig3_and_fig4_tables(fig8_run):
    assert fig3.main([str(fig8_run), "--no-latency"]) == 0
    table = outputs(fig8_run, "fig3", figures=("", "_cost"))
    assert list(table.columns) == fig3.COLUMNS
    base = table[(table.d == 1) & (table.w == 1) & (table.r == 1)]
    assert base.full_size_gflops.tolist() == pytest.approx([0.386] * len(base), abs=0.001)  # EfficientNet-B0 at 224 px
    assert fig4.main([str(fig8_run), "--no-latency"]) == 0
    assert len(outputs(fig8_run, "fig4", figures=("", "_cost"))) == len(table)


def test_tables_give_each_accuracy_with_its_std_over_seeds(fig8_run):
    assert fig8.main([str(fig8_run), "--no-latency"]) == 0
    table, trials = outputs(fig8_run, "fig8"), pd.read_csv(fig8_run / "trials.csv").set_index("key")
    assert (table.seeds == 2).all()
    points = common.load_points(fig8_run).set_index("key")
    for key, row in points.iterrows():  # the sample std of the two seed scores, in percent
        low, high = json.loads(trials.seed_scores[key])
        assert row.accuracy_std == pytest.approx(100 * abs(high - low) / 2 ** 0.5)
        assert trials.score_std[key] == pytest.approx(abs(high - low) / 2 ** 0.5)  # the same std, recorded
    markdown = (fig8_run / "tables" / "fig8.md").read_text()
    assert "accuracy_std" not in markdown and len(re.findall(r"\| \d+\.\d ± \d+\.\d \|", markdown)) == len(table)


def test_points_say_how_much_their_last_epoch_still_added(tmp_path):
    """last_epoch_gain: the mean over seeds of the final epoch's gain, in points; none for a pruned point."""
    pd.DataFrame({"key": ["a", "b", "c"], "series": ["s"] * 3}).to_csv(tmp_path / "candidates.csv", index=False)
    pd.DataFrame({
        "key": ["a", "b", "c"], "number": [0, 1, 2], "state": ["COMPLETE", "COMPLETE", "PRUNED"],
        "score": [0.5, 0.3, None], "seed_scores": ["[0.5, 0.5]", "[0.3]", None],
        "accuracies": ["[[0.2, 0.4, 0.5], [0.3, 0.45, 0.5]]", "[[0.1, 0.3]]", "[[0.1, 0.2]]"],
        "images_seen": [1, 1, 1], "train_seconds": [1, 1, 1], "eval_seconds": [1, 1, 1], "failure": [None] * 3,
    }).to_csv(tmp_path / "trials.csv", index=False)
    gain = common.load_points(tmp_path).set_index("key").last_epoch_gain
    assert gain.a == pytest.approx(7.5) and gain.b == pytest.approx(20.0) and pd.isna(gain.c)


def test_plus_minus_cells_by_hand():
    table = pd.DataFrame(dict(series=["a", "b", "c"], accuracy=[27.14, 16.5, float("nan")],
                              accuracy_std=[1.86, float("nan"), float("nan")]))
    shown = common.with_plus_minus(table)
    assert list(shown.columns) == ["series", "accuracy"]
    assert shown.accuracy.tolist() == ["27.1 ± 1.9", "16.5", ""]  # one seed: no std; not trained: empty
    assert common.with_plus_minus(table[["series"]]).equals(table[["series"]])


def test_family_table_has_the_full_size_and_proxy_columns(family_run):
    assert family.main([str(family_run)]) == 0
    table = outputs(family_run, "family")
    assert table.phi.tolist() == [-1, 0, 1, 2]
    assert table.flops_full.iloc[1] == pytest.approx(0.3008e9, rel=0.001)  # MobileNetV2 at 224 px
    assert (table.flops_full.diff().dropna() > 0).all() and (table.flops_proxy.diff().dropna() > 0).all()
    assert set(table.state_proxy) == {"COMPLETE"}


def test_table3_table_puts_the_papers_numbers_beside_ours(table3_run):
    assert table3.main([str(table3_run), "--no-latency"]) == 0
    table = outputs(table3_run, "table3", figures=("", "_cost"))
    assert list(table.columns) == table3.COLUMNS
    assert list(dict.fromkeys(table.base)) == ["mobilenetv1", "mobilenetv2", "resnet50"]
    assert table[table.method == "baseline"].flops_ratio.tolist() == [1.0, 1.0, 1.0]
    v2 = table[table.base == "mobilenetv2"].set_index("method")
    assert v2.paper_top1["compound"] == 77.4 and v2.paper_gflops["depth"] == 1.2
    assert v2.flops_ratio["depth"] > 2 and v2.full_size_gflops["baseline"] == pytest.approx(0.301, abs=0.001)


def test_search_figures_and_table(search_run):
    assert search.main([str(search_run)]) == 0
    table = outputs(search_run, "search")
    for name in ("optuna_history", "optuna_importance"):
        assert (search_run / "figures" / f"{name}.png").is_file()
    assert table.kept.sum() == 3 and table[table.kept].state.eq("COMPLETE").all()


def test_search_script_refuses_an_experiment(fig8_run, capsys):
    assert common.main_guard(search.main, [str(fig8_run)]) == 2
    assert "is an experiment, not a search" in capsys.readouterr().err


def test_report_reads_like_a_report(search_run):
    search.main([str(search_run)])
    assert report.main([str(search_run)]) == 0
    text = (search_run / "report.md").read_text()
    headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert headings == report.HEADINGS  # result, uncertainty, figures, then Optuna's diagnostics
    assert "Best candidate: alpha=" in text and "Verdict: " in text and "3 of" in text
    assert "Not measured" in text and f"python -m search.fidelity {search_run}" in text  # no fidelity.md yet
    assert "### " + report.title_of("search") in text and report.CAPTIONS["search"] in text  # words, captioned
    assert "## search" not in text and "(figures/search.png)" in text
    assert "e+0" not in text and "e+1" not in text  # integers as integers
    assert report.cell(12288.0, "images_seen") == "12288"
    assert report.cell(0.2974, "score") == "29.7%" and report.cell(29.74, "accuracy") == "29.7%"
    assert "%" in text.split("## Uncertainty")[0] and re.search(r"accuracy \d+\.\d%", text)
    assert "| kept |" not in text and "not trained" not in text  # every tiny grid point was kept and trained
    completed = (pd.read_csv(search_run / "trials.csv").state == "COMPLETE").sum()
    assert completed < report.MIN_IMPORTANCE_TRIALS  # the tiny run: importance left out, saying why
    assert "Parameter importance is left out: only" in text and "optuna_importance.png" not in text
    assert "### Optimisation history" in text and report.CAPTIONS["optuna_history"] in text
    page = (search_run / "report.html").read_text()  # self-contained: every image of report.md embedded
    assert page.count("<img ") == text.count("](figures/") >= 2
    assert page.count('<img src="data:image/png;base64,') == page.count("<img ")
    assert "<h2>Result</h2>" in page and "<table>" in page and "e+0" not in page.split("<img")[0]


def test_report_takes_in_fidelity_and_counts_untried_points(search_run, tmp_path):
    import shutil

    copy = shutil.copytree(search_run, tmp_path / "grid")
    grid = pd.read_csv(copy / "candidates.csv")
    outside = grid.assign(key=grid.key + "-far", kept=False)  # grid points the FLOPs filter dropped
    pd.concat([grid, outside, outside.assign(key=outside.key + "2")]).to_csv(copy / "candidates.csv", index=False)
    (copy / "fidelity.md").write_text("## How far to trust the ranking\n\nSome words.\n\n- Kendall tau: 0.8\n")
    assert report.main([str(copy)]) == 0
    text = (copy / "report.md").read_text()
    assert "### How far to trust the ranking" in text and "Not measured" not in text
    assert text.index("## Uncertainty") < text.index("Kendall tau") < text.index("## Scaling curves")
    assert f"{2 * len(grid)} of {3 * len(grid)} grid points were not trained: outside the FLOPs" in text
    assert "-far" not in text  # counted in one line, not listed
    assert "<li>Kendall tau: 0.8</li>" in (copy / "report.html").read_text()
    points = common.load_points(copy).assign(state="NOT RUN")
    config = common.load_config(copy)
    assert "kept but never tried" in report.not_run_line(config, points)


@pytest.mark.parametrize("script", [fig3, fig4, fig8, table3, family, rules], ids=lambda m: m.__name__)
def test_figure_scripts_refuse_a_grid_search(script, search_run, capsys):
    before = sorted(p for p in search_run.rglob("*"))
    capsys.readouterr()
    assert common.main_guard(script.main, [str(search_run)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {search_run} is a search, not a ") and "\n" not in err
    assert err.endswith(f"use python -m analysis.search {search_run}")
    assert sorted(p for p in search_run.rglob("*")) == before  # no latency.csv, figure or table


def test_fig3_names_the_script_of_a_table3_run(table3_run, capsys):
    assert common.main_guard(fig3.main, [str(table3_run)]) == 2
    assert "not a fig3 run: use python -m analysis.table3" in capsys.readouterr().err


def test_a_run_of_another_kind_as_a_real_process(search_run):
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "-m", "analysis.fig3", str(search_run)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_outputs_are_written_atomically_and_synced(tmp_path, monkeypatch):
    import os

    import matplotlib.pyplot as plt

    synced, renamed = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append((a, b)), real_replace(a, b))[1])
    fig, _ = plt.subplots()
    written = common.save_figure(fig, tmp_path, "f") + common.write_table(pd.DataFrame({"a": [1.5]}), tmp_path, "t")
    assert [Path(b) for _, b in renamed] == written  # each output renamed into place from a temporary file
    assert all(Path(a).parent == Path(b).parent and Path(a).name.endswith(".tmp") for a, b in renamed)
    assert len(synced) >= 2 * len(written)  # each file, and its folder after the rename
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and written[1].read_bytes()[:5] == b"%PDF-"
    assert pd.read_csv(written[2]).a.tolist() == [1.5] and not list(tmp_path.rglob("*.tmp"))


def test_missing_run_folder_is_one_line(tmp_path, capsys):
    assert common.main_guard(fig3.main, [str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.strip().startswith("error: ")
