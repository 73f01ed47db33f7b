"""The constrained grid and the measured-FLOPs filter."""

from __future__ import annotations

import math

import pytest

from search.plan.candidates import ProxyBase, measure_and_filter
from search.plan.grid import Candidate, axis_values, closest_product, grid, product
from search.record import CANDIDATE_COLUMNS


def test_axis_values_are_free_of_float_drift():
    assert axis_values(1.0, 2.0, 0.1) == [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0]
    assert axis_values(1.0, 1.5, 0.05)[-1] == 1.5 and len(axis_values(1.0, 1.5, 0.05)) == 11
    assert axis_values(1.0, 1.0, 0.1) == [1.0]
    assert axis_values(1.0, 1.29, 0.1) == [1.0, 1.1, 1.2]


def test_grid_feasible_set_for_known_ranges():
    axis = axis_values(1.0, 2.0, 0.5)  # 1.0, 1.5, 2.0
    points = {(c.alpha, c.beta, c.gamma) for c in grid(axis, axis, axis, target=2.0, tolerance=0.0)}
    assert points == {(2.0, 1.0, 1.0)}  # 1.5^2 = 2.25 is off by 0.25
    points = {(c.alpha, c.beta, c.gamma) for c in grid(axis, axis, axis, target=2.0, tolerance=0.25)}
    assert points == {(2.0, 1.0, 1.0), (1.0, 1.5, 1.0), (1.0, 1.0, 1.5)}


def test_grid_contains_the_papers_b0_coefficients():
    points = grid(axis_values(1, 2, 0.05), axis_values(1, 1.5, 0.05), axis_values(1, 1.5, 0.05), 2.0, 0.1)
    assert (1.2, 1.1, 1.15) in {(c.alpha, c.beta, c.gamma) for c in points}
    assert all(abs(product(c.alpha, c.beta, c.gamma) - 2.0) <= 0.1 + 1e-9 for c in points)
    assert all(min(c.alpha, c.beta, c.gamma) >= 1 for c in points)


def test_tolerance_edges_are_inclusive():
    # 1.1^2 * 1.65... : pick a point whose product is exactly target + tolerance in decimal terms
    assert product(1.0, 1.1, 1.0) == pytest.approx(1.21)
    inside = grid([1.0], [1.1], [1.0], target=1.0, tolerance=0.21)
    outside = grid([1.0], [1.1], [1.0], target=1.0, tolerance=0.2099)
    assert len(inside) == 1 and outside == []


def test_closest_product_names_the_nearest_point():
    value, point = closest_product([1.0, 1.1], [1.0], [1.0], target=2.0)
    assert point == (1.1, 1.0, 1.0) and value == pytest.approx(1.1)


def test_candidate_key_and_formula_ratio():
    c = Candidate(1.2, 1.1, 1.15, "grid", 1.2, 1.1, 1.15)
    assert c.key == "grid:d=1.2,w=1.1,r=1.15"
    assert c.formula_ratio == pytest.approx(1.2 * 1.21 * 1.3225)


def test_measured_ratio_filter_keeps_only_candidates_near_target():
    base = ProxyBase("resnet18", "small", 1.0, 0.25, 32, 10, 3)
    points = [
        Candidate(2.0, 1.0, 1.0, "grid", 2.0, 1.0, 1.0),
        Candidate(1.0, 1.0, 1.5, "grid", 1.0, 1.0, 1.5),  # 48 px: maps grow from 2x2 to 3x3
        Candidate(1.0, 1.0, 1.0, "grid", 1.0, 1.0, 1.0),  # ratio 1: far from 2
    ]
    records = measure_and_filter(base, points, target=2.0, flops_tolerance=0.15)
    assert list(records[0]) == CANDIDATE_COLUMNS
    by_key = {r["key"]: r for r in records}
    assert by_key["grid:d=1,w=1,r=1"]["measured_ratio"] == pytest.approx(1.0)
    assert not by_key["grid:d=1,w=1,r=1"]["kept"]
    for rec in records:
        assert rec["kept"] == (abs(rec["measured_ratio"] / 2.0 - 1) <= 0.15)
        assert rec["formula_ratio"] == pytest.approx(rec["d"] * rec["w"] ** 2 * rec["r"] ** 2)
    assert by_key["grid:d=1,w=1,r=1.5"]["resolution"] == 48
    assert math.isclose(by_key["grid:d=2,w=1,r=1"]["depth"], 2.0)


def test_max_candidates_keeps_the_closest_ratios():
    base = ProxyBase("resnet18", "small", 1.0, 0.25, 32, 10, 3)
    points = [Candidate(a, 1.0, 1.0, "grid", a, 1.0, 1.0) for a in (1.5, 2.0, 2.5)]
    records = measure_and_filter(base, points, target=2.0, flops_tolerance=1.0, max_candidates=1)
    assert [r["alpha"] for r in records if r["kept"]] == [2.0]
