"""Experiment series: the paper's exact designs, the FLOPs-matching solver, the MAC counter."""

from __future__ import annotations

import math

import pytest
import yaml

from models import BASES, scaled_spec
from models.macs import conv_linear_macs
from models.reference import PAPER_ALPHA_BETA_GAMMA, PAPER_TABLE3
from models.complexity import measure_spec
from search.config import SeriesConfig
from search.plan.candidates import ProxyBase, series_base
from search.plan.grid import Candidate
from search.plan.series import SeriesError, bisect_flops, broadcast, coefficients_from, compound, experiment_points
from tests.conftest import ROOT


def experiment(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "experiment" / f"{name}.yaml").read_text())


def test_fig3_series_are_the_papers():
    series = experiment("fig3")["series"]
    assert series["width"]["w"] == [1.0, 1.4, 1.8, 2.6, 3.8, 5.0]
    assert series["depth"]["d"] == [1, 2, 3, 4, 6, 8]
    assert series["resolution"]["r"] == [1.0, 1.3, 1.5, 1.7, 1.9, 2.2, 2.5]


def test_fig4_baselines_are_the_papers():
    series = experiment("fig4")["series"].values()
    assert sorted((s["d"], s["r"]) for s in series) == [(1.0, 1.0), (1.0, 1.3), (2.0, 1.0), (2.0, 1.3)]
    assert all(s["w"][0] == 1.0 and len(s["w"]) >= 4 for s in series)


def test_table3_rows_are_the_papers():
    series = experiment("table3")["series"]
    for row in PAPER_TABLE3:
        spec = series[f"{row.base}_{row.method}"]
        base = spec["base"] if isinstance(spec["base"], str) else spec["base"]["name"]
        assert base == row.base
        if math.isnan(row.d):  # V2 and ResNet-50 compound: phi solved for the paper's FLOPs ratio
            baseline = next(r for r in PAPER_TABLE3 if r.base == row.base and r.method == "baseline")
            assert spec["solve"] == "phi" and spec["flops_ratio"] == pytest.approx(row.gflops / baseline.gflops, rel=1e-5)
        else:
            assert (spec.get("d", 1.0), spec.get("w", 1.0), spec.get("r", 1.0)) == (row.d, row.w, row.r)
    assert len(series) == len(PAPER_TABLE3)


def test_broadcast_repeats_single_values_and_rejects_ragged_lists():
    assert broadcast(1.0, [1.0, 2.0], 1.5) == [(1.0, 1.0, 1.5), (1.0, 2.0, 1.5)]
    with pytest.raises(SeriesError, match="one length"):
        broadcast([1, 2], [1, 2, 3], 1)


def test_compound_and_coefficient_sources(tmp_path):
    assert compound((1.2, 1.1, 1.15), 2) == (1.44, 1.21, 1.3225)
    assert coefficients_from("paper") == PAPER_ALPHA_BETA_GAMMA
    best = tmp_path / "best.yaml"
    best.write_text(yaml.safe_dump({"alpha": 1.4, "beta": 1.05, "gamma": 1.15}))
    assert coefficients_from(str(best)) == (1.4, 1.05, 1.15)
    with pytest.raises(SeriesError, match="neither 'paper'"):
        coefficients_from("nope.yaml")
    with pytest.raises(SeriesError, match="three numbers >= 1"):
        coefficients_from([1.2, 0.9, 1.1])


def test_bisection_lands_on_the_nearer_side_of_a_step():
    steps = lambda x: 100 * math.floor(x)  # noqa: E731  a staircase like rounded repeats
    assert steps(bisect_flops(steps, 340, 1.0, 64.0)) == 300  # nearer than 400
    assert steps(bisect_flops(steps, 380, 1.0, 64.0)) == 400
    assert bisect_flops(steps, 380, 1.0, 64.0) == pytest.approx(4.0, abs=1e-3)  # just past the step
    assert bisect_flops(steps, 50, 1.0, 64.0) == 1.0  # already above the target at the lower bound
    assert bisect_flops(steps, 1e9, 1.0, 64.0) == 64.0  # unreachable: the limit


@pytest.mark.parametrize("base", sorted(BASES))
def test_shape_count_equals_fvcore(base):
    for d, w, res, variant in ((1.0, 0.35, 32, "small"), (2.3, 1.2, 45, "small"), (1.0, 1.0, 224, "imagenet")):
        spec = scaled_spec(base, d, w, variant)
        assert conv_linear_macs(spec, res, 10, 3) == measure_spec(spec, res, 10, 3).flops


def solved(name: str):
    """The series of conf/experiment/<name>.yaml solved for its default proxy bases."""
    exp = experiment(name)
    overrides = [d["override /base"] for d in exp.get("defaults", []) if "override /base" in d]
    any_base = ProxyBase("mobilenetv2", "small", 1.0, 1.0, 32, 10, 3)  # only its classes and channels matter
    base = series_base(any_base, {"name": (overrides or ["mobilenetv2"])[0], **exp.get("base", {})})
    specs = {k: SeriesConfig(**v) for k, v in exp["series"].items()}
    bases = {name: series_base(base, s.base) for name, s in specs.items()}
    return experiment_points(specs, lambda n, c: bases[n].macs(c)), bases


def test_fig8_default_points_are_within_3_percent_of_their_targets():
    points, bases = solved("fig8")
    assert bases["depth"].name == "efficientnet_b0" and bases["depth"].resolution == 36
    compound_flops = [bases["compound"].macs(c) for c in points["compound"]]
    assert [c.phi for c in points["compound"]] == [0, 1, 2, 3, 4]
    for series in ("depth", "width", "resolution"):
        assert [c.target_flops for c in points[series]] == compound_flops
        for c in points[series]:
            assert abs(bases[series].macs(c) / c.target_flops - 1) <= 0.03, (series, c)
        changed = {"depth": "d", "width": "w", "resolution": "r"}[series]
        assert all(getattr(c, k) == 1.0 for c in points[series] for k in "dwr" if k != changed)


def test_table3_compound_phi_matches_the_papers_flops_ratio():
    points, bases = solved("table3")
    for base, paper_ratio in (("mobilenetv2", 1.3 / 0.3), ("resnet50", 16.7 / 4.1)):
        (c,) = points[f"{base}_compound"]
        b = bases[f"{base}_compound"]
        ratio = b.macs(c) / b.macs(Candidate(1.0, 1.0, 1.0))
        assert c.phi > 1 and ratio == pytest.approx(paper_ratio, rel=0.05)
        assert (c.d, c.w, c.r) == compound(PAPER_ALPHA_BETA_GAMMA, c.phi)
    assert bases["resnet50_baseline"].width == 0.25 and bases["mobilenetv1_baseline"].name == "mobilenetv1"


def test_match_must_name_an_earlier_series():
    specs = {"depth": SeriesConfig(solve="d", match="compound"), "compound": SeriesConfig(phi=[1])}
    with pytest.raises(SeriesError, match="match='compound' must name a series defined before it"):
        experiment_points(specs, lambda n, c: 1)
