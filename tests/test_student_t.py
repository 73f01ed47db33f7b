"""Student's t of search/student_t.py against closed forms and printed table values."""

from __future__ import annotations

import math

import pytest

from search.student_t import regularized_beta, t_cdf, t_quantile, welch_df


@pytest.mark.parametrize("t", [-40.0, -3.0, -0.5, 0.0, 0.2, 1.0, 6.3, 100.0])
def test_cdf_matches_the_closed_forms_at_one_and_two_degrees_of_freedom(t):
    assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)  # Cauchy
    assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


@pytest.mark.parametrize("df, q95, q975", [
    (1, 6.3138, 12.7062), (2, 2.9200, 4.3027), (3, 2.3534, 3.1824), (4, 2.1318, 2.7764),
    (10, 1.8125, 2.2281), (30, 1.6973, 2.0423),
])
def test_quantiles_match_the_printed_table(df, q95, q975):
    assert t_quantile(0.95, df) == pytest.approx(q95, abs=1e-4)
    assert t_quantile(0.975, df) == pytest.approx(q975, abs=1e-4)
    assert t_quantile(0.05, df) == pytest.approx(-q95, abs=1e-4)  # symmetric


def test_quantile_tends_to_the_normal_and_inverts_the_cdf_at_fractional_df():
    assert t_quantile(0.95, 1e6) == pytest.approx(1.644854, abs=1e-5)
    for df in (1.3, 2.7, 7.5):
        for p in (0.6, 0.95, 0.999):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)
    assert t_quantile(0.95, 1.5) > t_quantile(0.95, 2) > t_quantile(0.95, 3)  # fewer df, heavier tail


def test_regularized_beta_known_values():
    assert regularized_beta(1, 1, 0.3) == pytest.approx(0.3)  # uniform
    assert regularized_beta(2, 3, 0.4) == pytest.approx(0.5248)  # 1 - (1-x)^3 (1+3x) at x = 0.4
    assert regularized_beta(2, 3, 0.0) == 0.0 and regularized_beta(2, 3, 1.0) == 1.0


def test_welch_df():
    assert welch_df(0.0004, 3, 0.0004, 3) == pytest.approx(4.0)  # equal spread and n: n_a + n_b - 2
    assert welch_df(1.0, 2, 0.0, 5) == pytest.approx(1.0)  # all the noise in one candidate: its n - 1
    assert 1.0 < welch_df(1.0, 2, 1.0, 10) < 10.0
    assert welch_df(0.0, 2, 0.0, 3) == 3.0  # no noise at all: the pooled df, not 0/0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="p=1.0"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="df=0"):
        t_cdf(1.0, 0)
