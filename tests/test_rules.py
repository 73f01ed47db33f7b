"""Scaling rules as shares of log-FLOPs (models/rules.py), solved on measured multiply-adds, and the
accuracy laws fitted on small networks to predict larger ones (analysis/laws.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import laws
from models.rules import RULES, Rule, from_coefficients, from_flops_fractions
from search.config import SeriesConfig
from search.plan.candidates import ProxyBase
from search.plan.grid import Candidate
from search.plan.series import SeriesError, coefficients_from, experiment_points
from tests.conftest import TINY, run_entry, run_module

RATIOS = [2, 4, 8, 16]


def test_shares_and_coefficients_are_one_rule():
    paper = from_coefficients(1.2, 1.1, 1.15)
    phi = math.log(8) / math.log(1.2 * 1.1**2 * 1.15**2)  # the phi that scales FLOPs by 8 under the formula
    assert paper.multipliers(8) == pytest.approx((1.2**phi, 1.1**phi, 1.15**phi))
    for rule in RULES.values():
        d, w, r = rule.multipliers(8)
        assert d * w**2 * r**2 == pytest.approx(8)
        alpha, beta, gamma = rule.coefficients
        assert alpha * beta**2 * gamma**2 == pytest.approx(math.e)  # so phi = ln(FLOPs ratio)
    assert RULES["fast"] == from_flops_fractions(0.1, 0.8, 0.1) == Rule(0.1, 0.4, 0.05)
    assert {name: round(rule.activation_slope, 3) for name, rule in RULES.items()} == {
        "efficientnet": 0.854, "fast": 0.6, "depth_first": 1.0, "depth": 1.0, "width": 0.5, "resolution": 1.0}


@pytest.mark.parametrize("shares", [(0.5, 0.5, 0.5), (-0.2, 0.3, 0.3), (1.0, 0.1, 0.0)])
def test_shares_off_the_simplex_are_refused(shares):
    with pytest.raises(ValueError, match="must be >= 0 with depth \\+ 2 \\* width \\+ 2 \\* resolution = 1"):
        Rule(*shares)


def test_a_series_takes_a_rule_by_name_or_as_shares():
    assert coefficients_from("fast") == RULES["fast"].coefficients
    assert coefficients_from({"depth": 0.2, "width": 0.2, "resolution": 0.2}) == Rule(0.2, 0.2, 0.2).coefficients
    with pytest.raises(SeriesError, match="coefficients=\\{'depth': 0.5, 'width': 0.5, 'resolution': 0.5\\}: shares"):
        coefficients_from({"depth": 0.5, "width": 0.5, "resolution": 0.5})
    with pytest.raises(SeriesError, match="a rule \\(efficientnet, fast, depth_first, depth, width, resolution\\)"):
        coefficients_from("fastest")


@pytest.fixture(scope="module")
def b0_by_rule():
    """EfficientNet-B0 as published (224 px) scaled by every rule to 2, 4, 8 and 16x its measured FLOPs."""
    proxy = ProxyBase("efficientnet_b0", "imagenet", 1.0, 1.0, 224, 1000, 3)
    series = {name: SeriesConfig(solve="phi", flops_ratio=RATIOS, coefficients=name) for name in RULES}
    return proxy, experiment_points(series, lambda name, c: proxy.macs(c))


def test_the_solver_scales_b0_by_every_rule_to_each_ratio_within_3_percent(b0_by_rule):
    proxy, points = b0_by_rule
    base = proxy.macs(Candidate(1.0, 1.0, 1.0))
    for name, candidates in points.items():
        for ratio, c in zip(RATIOS, candidates):
            assert abs(proxy.macs(c) / base / ratio - 1) <= 0.03, (name, ratio, c)


def test_activation_slopes_measured_by_fvcore_on_b0_match_the_rules(b0_by_rule):
    """Fitted on log-log axes over ratios 1-16. Depth scaling leaves the stem, the head and the
    classifier as they are, and the stem's 112 px output is a large share of B0's activations:
    its measured slope is 0.92, not 1.0 (README, "Scaling rules")."""
    proxy, points = b0_by_rule
    base = proxy.complexity(Candidate(1.0, 1.0, 1.0))
    slopes = {}
    for name, candidates in points.items():
        measured = [base] + [proxy.complexity(c) for c in candidates]
        flops = np.log([m.flops for m in measured])
        slopes[name] = np.polyfit(flops, np.log([m.activations for m in measured]), 1)[0]
    for name in ("efficientnet", "fast", "width", "resolution"):
        assert abs(slopes[name] - RULES[name].activation_slope) <= 0.05, (name, slopes[name])
    for name in ("depth", "depth_first"):
        assert 0.85 <= slopes[name] < 1.0, (name, slopes[name])
    assert slopes["fast"] < slopes["efficientnet"] < slopes["depth"]  # the reason the fast rule exists


def test_a_known_saturating_law_is_recovered_and_predicts_larger_networks():
    truth = laws.Law("saturating", (0.80, 0.30, 0.70))
    small = np.repeat([1.0, 1.5, 2.0, 3.0, 4.0], 3)  # three seeds per point
    noisy = truth.predict(small) + np.random.default_rng(0).normal(0, 0.002, len(small))
    law = laws.choose(small, noisy)
    assert law.name == "saturating" and law.params == pytest.approx(truth.params, rel=0.15)
    assert law.predict([8, 16]) == pytest.approx(truth.predict([8, 16]), abs=0.01)


def test_a_straight_line_stays_a_line():
    ratios = np.array([1.0, 2.0, 3.0, 4.0])
    accuracy = 0.5 + 0.05 * np.log(ratios) + np.array([0.004, -0.003, 0.002, -0.004])
    law = laws.choose(ratios, accuracy)
    assert law.name == "log_linear" and law.params == pytest.approx((0.5, 0.05), abs=0.01)
    assert laws.choose([1, 2, 4], [0.5, 0.55, 0.6]).name == "log_linear"  # too few ratios for three parameters


def test_the_pareto_front_keeps_points_no_other_beats_on_accuracy_and_latency():
    from analysis.rules import pareto

    points = pd.DataFrame(dict(state=["COMPLETE"] * 4 + ["FAIL"], accuracy=[50.0, 60.0, 55.0, 60.0, 99.0],
                               latency_ms=[1.0, 2.0, 3.0, 2.5, 0.1]))
    assert pareto(points).tolist() == [True, True, False, False, False]  # a failed point is never on it


def test_the_rules_experiment_runs_and_is_analysed(runs):
    """Two rules at FLOPs ratios 1, 2 and 8 with two seeds: the figures, the Pareto front, and the law
    fitted at ratios <= 4 predicting the 8x points."""
    tiny = [a for a in TINY if not a.startswith("base=")]
    drop = ["~series.rule_depth_first"]
    search = run_entry("experiment=rules", *tiny, *drop, "series.rule_efficientnet.flops_ratio=[1,2,8]",
                       "series.rule_fast.flops_ratio=[1,2,8]", "search.seeds=2", "train.epochs=1",
                       "train.max_images=64", f"runs_dir={runs}", "name=rules")
    assert search.returncode == 0, search.stderr[-2000:]
    done = run_module("analysis.rules", runs / "rules")
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(runs / "rules" / "tables" / "rules.csv")
    assert set(table.rule) == {"efficientnet", "fast"} and len(table) == 6
    assert table.accuracy_std.notna().all() and table.pareto.any()
    predicted = pd.read_csv(runs / "rules" / "tables" / "rules_laws.csv")
    assert set(predicted.rule) == {"efficientnet", "fast"} and predicted.measured_ratio.gt(4.5).all()
    assert ((predicted.error - (predicted.predicted - predicted.accuracy)).abs() <= 0.011).all()  # both rounded
    assert (runs / "rules" / "figures" / "rules.png").is_file()
    assert table.train_mb.gt(0).all()
    base = table[table.measured_ratio == 1].train_mb.iloc[0]
    assert (table[table.measured_ratio > 1].train_mb > base).all()  # each rule's larger networks hold more
