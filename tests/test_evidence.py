"""The proxy-fidelity statistics of search/evidence.py on small tables whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.evidence import (
    FidelitySummary, bootstrap_tau_interval, earliest_trustworthy_epoch,
    epoch_rank_agreement, kendall_tau, last_epoch_gain, leaders, margin_verdict, seed_noise, seed_std, spread_over_noise, summarize,
    top1_regret,
)


def brute_tau_b(x, y):
    """Count concordant, discordant and tied pairs one by one: the textbook tau-b."""
    n = len(x)
    c = d = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0:
                tx += 1
            if dy == 0:
                ty += 1
            if dx * dy > 0:
                c += 1
            elif dx * dy < 0:
                d += 1
    n0 = n * (n - 1) // 2
    denom = math.sqrt((n0 - tx) * (n0 - ty))
    return (c - d) / denom if denom else math.nan


# --- kendall_tau ---

def test_tau_identical_and_reversed_rankings():
    x = [0.1, 0.5, 0.3, 0.9, 0.7]
    assert kendall_tau(x, x) == pytest.approx(1.0)
    assert kendall_tau(x, [2 * v + 1 for v in x]) == pytest.approx(1.0)  # same order, other scale
    assert kendall_tau(x, [-v for v in x]) == pytest.approx(-1.0)


def test_tau_b_with_ties_by_hand():
    # x = [1, 2, 2, 3], y = [2, 1, 3, 3]; the 6 pairs:
    #   (0,1) x up, y down -> discordant     (0,2) up, up -> concordant   (0,3) up, up -> concordant
    #   (1,2) tie in x                       (1,3) up, up -> concordant   (2,3) tie in y
    # C = 3, D = 1, n0 = 6, ties in x n1 = 1, ties in y n2 = 1:
    # tau_b = (C - D) / sqrt((n0 - n1) * (n0 - n2)) = 2 / sqrt(5 * 5) = 0.4  (tau-a would be 2/6)
    assert kendall_tau([1, 2, 2, 3], [2, 1, 3, 3]) == pytest.approx(0.4)


def test_tau_matches_brute_force_pair_count_with_ties():
    rng = np.random.default_rng(7)
    for n in (2, 3, 5, 8, 13, 30):
        for _ in range(5):
            x = rng.integers(0, 4, size=n).astype(float)  # few values: many ties
            y = rng.integers(0, 4, size=n).astype(float)
            expected = brute_tau_b(list(x), list(y))
            got = kendall_tau(x, y)
            if math.isnan(expected):
                assert math.isnan(got)
            else:
                assert got == pytest.approx(expected, abs=1e-12)


def test_tau_undefined_cases_and_missing_scores():
    assert math.isnan(kendall_tau([0.5], [0.7]))
    assert math.isnan(kendall_tau([], []))
    assert math.isnan(kendall_tau([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))  # no variance in x
    # a NaN score drops that candidate: the rest agree perfectly
    assert kendall_tau([0.1, np.nan, 0.3, 0.4], [0.2, 0.9, 0.4, 0.5]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        kendall_tau([1, 2, 3], [1, 2])


# --- top1_regret ---

def test_regret_zero_when_picks_agree():
    assert top1_regret([0.5, 0.7, 0.6], [0.80, 0.85, 0.83]) == 0.0


def test_regret_known_value_when_picks_differ():
    # proxy picks candidate 1 (0.7); under the long budget it scores 0.78, the best scores 0.83
    assert top1_regret([0.5, 0.7, 0.6], [0.80, 0.78, 0.83]) == pytest.approx(0.05)


def test_regret_takes_first_of_tied_proxy_picks():
    # candidates 0 and 1 tie under the proxy; the first (long 0.6) is the pick, best long is 0.9
    assert top1_regret([0.7, 0.7, 0.1], [0.6, 0.9, 0.5]) == pytest.approx(0.3)


# --- seed_noise / spread_over_noise ---

def test_seed_noise_of_a_hand_table():
    table = [
        [0.1, 0.3, np.nan],   # mean 0.2, sample variance (0.01 + 0.01) / 1 = 0.02
        [0.5, 0.5, 0.8],      # mean 0.6, sample variance (0.01 + 0.01 + 0.04) / 2 = 0.03
        [0.9, np.nan, np.nan],  # one seed: left out
    ]
    assert seed_noise(table) == pytest.approx(math.sqrt((0.02 + 0.03) / 2))


def test_seed_std_is_the_sample_std():
    assert seed_std([0.5, 0.5, 0.8]) == pytest.approx(math.sqrt(0.03))  # not the population std, 0.141
    assert seed_std([0.1, np.nan, 0.3]) == pytest.approx(math.sqrt(0.02))
    assert math.isnan(seed_std([0.7])) and math.isnan(seed_std([]))


def test_seed_noise_undefined_with_single_seeds():
    assert math.isnan(seed_noise([[0.5], [0.6]]))
    assert math.isnan(seed_noise([[0.5, np.nan], [0.6, np.nan]]))


def test_spread_over_noise():
    assert spread_over_noise([0.60, 0.70, 0.65], 0.02) == pytest.approx(5.0)
    assert spread_over_noise([0.60, np.nan, 0.70], 0.05) == pytest.approx(2.0)
    assert math.isnan(spread_over_noise([0.6, 0.7], 0.0))
    assert math.isnan(spread_over_noise([0.6, 0.7], math.nan))
    assert math.isnan(spread_over_noise([np.nan, np.nan], 0.1))


# --- margin_verdict ---

def test_verdict_separable():
    # means 0.82 and 0.72, each sample variance 0.0004 over 3 seeds: se = sqrt(0.0004/3 + 0.0004/3) = 0.0163,
    # Welch df = 4, t(0.95, 4) = 2.132: margin 0.10 > 0.0348
    v = margin_verdict([0.80, 0.82, 0.84], [0.70, 0.72, 0.74])
    assert v["verdict"] == "separable"
    assert v["margin"] == pytest.approx(0.10)
    assert v["noise"] == pytest.approx(math.sqrt(2 * 0.0004 / 3))
    assert v["needed"] == pytest.approx(2.131847 * math.sqrt(2 * 0.0004 / 3), rel=1e-6)
    assert all(type(v[k]) is float for k in ("margin", "noise", "needed"))  # plain floats for best.yaml


def test_verdict_within_noise():
    # means 0.80 and 0.78, each sample variance 0.01 over 3 seeds: se = sqrt(0.02/3) = 0.082 > margin 0.02
    v = margin_verdict([0.80, 0.90, 0.70], [0.78, 0.68, 0.88])
    assert v["verdict"] == "within_noise"
    assert v["margin"] == pytest.approx(0.02)
    assert v["noise"] == pytest.approx(math.sqrt(0.02 / 3))


def test_verdict_holds_two_seeds_to_students_t_not_to_two_standard_errors():
    # 2 seeds each, +-0.01 around the mean: variance 0.0002, se = sqrt(2 * 0.0002 / 2) = 0.01414, Welch df = 2,
    # t(0.95, 2) = 2.920. A margin of 2.5 se cleared the old two-standard-error rule; at 2 df it is noise.
    se = math.sqrt(0.0002)
    runner = [0.79, 0.81]
    for margin_in_se, verdict in ((3.0, "separable"), (2.5, "within_noise")):
        centre = 0.80 + margin_in_se * se
        v = margin_verdict([centre - 0.01, centre + 0.01], runner)
        assert v["noise"] == pytest.approx(se) and v["margin"] == pytest.approx(margin_in_se * se)
        assert v["needed"] == pytest.approx(2.919986 * se, rel=1e-6)
        assert v["verdict"] == verdict


def test_verdict_threshold_is_the_t_quantile():
    # margin exactly t * se is not "more than" it; a hair more is
    best, runner = np.array([0.80, 0.82, 0.84]), np.array([0.70, 0.72, 0.74])
    needed = margin_verdict(best, runner)["needed"]
    shift = needed - 0.10
    assert margin_verdict(best + shift - 1e-9, runner)["verdict"] == "within_noise"
    assert margin_verdict(best + shift + 1e-9, runner)["verdict"] == "separable"


def test_verdict_no_noise_estimate_with_a_single_seed():
    v = margin_verdict([0.9], [0.5, 0.6])
    assert v["verdict"] == "no_noise_estimate"
    assert v["margin"] == pytest.approx(0.35)
    assert v["noise"] is None
    assert margin_verdict([0.9, 0.8], [0.5, np.nan])["verdict"] == "no_noise_estimate"  # NaN is no seed


def test_leaders_are_the_candidates_the_best_does_not_beat_separably():
    table = [
        [0.80, 0.82, 0.84],  # the best (mean 0.82)
        [0.70, 0.72, 0.74],  # 10 points below, standard error 1.6: separable (2.13 x 1.6 needed)
        [0.80, 0.90, 0.70],  # 2 points below, standard error 5.9: within noise
        [np.nan] * 3,  # never scored: never a leader
        [0.50, np.nan, np.nan],  # one seed: no noise estimate, so it cannot be excluded
    ]
    assert leaders(table).tolist() == [True, False, True, False, True]
    assert leaders([[np.nan, np.nan]]).tolist() == [False]
    assert leaders([[0.9], [0.1]]).tolist() == [True, True]  # one seed each: nothing is excluded


def test_verdict_no_runner_up():
    for runner in (None, []):
        v = margin_verdict([0.9, 0.8], runner)
        assert v["verdict"] == "no_runner_up"
        assert v["margin"] is None


# --- bootstrap_tau_interval ---

MEANS_SHORT = np.array([0.50, 0.55, 0.60, 0.65, 0.70, 0.75])
MEANS_LONG = np.array([0.60, 0.66, 0.64, 0.75, 0.80, 0.85])  # one swap: tau = 13/15


def noisy_table(means, sd, seeds, rng):
    """Return (candidates, seeds) scores whose per-candidate means equal `means` exactly."""
    noise = rng.normal(0.0, sd, size=(len(means), seeds))
    return means[:, None] + noise - noise.mean(1, keepdims=True)


def test_bootstrap_interval_contains_point_and_narrows_with_less_noise():
    rng = np.random.default_rng(3)
    point = kendall_tau(MEANS_SHORT, MEANS_LONG)
    assert point == pytest.approx(13 / 15)
    widths = {}
    for sd in (0.005, 0.05):
        short, long = noisy_table(MEANS_SHORT, sd, 4, rng), noisy_table(MEANS_LONG, sd, 3, rng)
        low, high = bootstrap_tau_interval(short, long, n_boot=1000, rng_seed=0)
        assert -1.0 <= low <= point <= high <= 1.0
        widths[sd] = high - low
    assert widths[0.005] < widths[0.05]
    assert widths[0.05] > 0.3  # noise as large as the spread really does widen it


def test_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    short, long = noisy_table(MEANS_SHORT, 0.05, 3, rng), noisy_table(MEANS_LONG, 0.05, 3, rng)
    a = bootstrap_tau_interval(short, long, n_boot=500, rng_seed=11)
    b = bootstrap_tau_interval(short, long, n_boot=500, rng_seed=11)
    assert a == b
    others = {bootstrap_tau_interval(short, long, n_boot=500, rng_seed=s) for s in range(12, 17)}
    assert len(others | {a}) > 1  # the seed does drive the draws


def test_bootstrap_ignores_nan_seeds_and_undefined_cases():
    short = [[0.5, 0.5, np.nan], [0.6, 0.6, 0.6], [0.7, np.nan, np.nan]]
    long = [[0.6, 0.6], [0.7, 0.7], [0.8, 0.8]]
    assert bootstrap_tau_interval(short, long, n_boot=50) == (1.0, 1.0)  # no noise left: always 1
    low, high = bootstrap_tau_interval([[0.5, 0.6]], [[0.7, 0.8]], n_boot=50)  # one candidate
    assert math.isnan(low) and math.isnan(high)
    with pytest.raises(ValueError):
        bootstrap_tau_interval([[0.5], [0.6]], [[0.5]], n_boot=10)


# --- last_epoch_gain ---


def test_last_epoch_gain_is_the_mean_over_seeds_of_the_final_step():
    assert last_epoch_gain([[0.2, 0.4, 0.5], [0.3, 0.45, 0.5]]) == pytest.approx(0.075)
    assert last_epoch_gain([[0.6, 0.5]]) == pytest.approx(-0.1)  # a falling curve
    assert math.isnan(last_epoch_gain([[0.2]]))  # one epoch: no last step to measure
    assert math.isnan(last_epoch_gain([[0.2, 0.3], [0.4]]))  # a seed pruned after one epoch
    assert math.isnan(last_epoch_gain([]))


# --- epoch_rank_agreement / earliest_trustworthy_epoch ---

def test_epoch_agreement_and_earliest_trustworthy_epoch():
    final = [0.60, 0.70, 0.80, 0.90]
    curves = np.array([
        # epoch: 1     2     3     4
        [0.40, 0.20, 0.30, 0.55],
        [0.30, 0.10, 0.35, 0.65],
        [0.20, 0.40, 0.50, 0.75],
        [0.10, 0.30, 0.52, 0.85],
    ])
    agreement = epoch_rank_agreement(curves, final)
    # epoch 1 reversed; epoch 2 swaps pairs (0,1) and (2,3): C = 4, D = 2 -> 2/6; epochs 3, 4 agree
    assert agreement == pytest.approx([-1.0, 1 / 3, 1.0, 1.0])
    assert earliest_trustworthy_epoch(agreement) == 3
    assert earliest_trustworthy_epoch(agreement, threshold=0.3) == 2
    with pytest.raises(ValueError):
        epoch_rank_agreement(curves, final[:3])


def test_earliest_trustworthy_epoch_needs_every_later_epoch():
    assert earliest_trustworthy_epoch([0.9, 0.2, 0.8, 1.0]) == 3  # an early good epoch does not count
    assert earliest_trustworthy_epoch([0.9, 0.9, 0.5]) is None  # the last epoch disagrees
    assert earliest_trustworthy_epoch([0.7, 0.6, 0.8]) == 1  # threshold is inclusive
    assert earliest_trustworthy_epoch([0.9, math.nan]) is None  # undefined is not trustworthy
    assert earliest_trustworthy_epoch([]) is None


# --- summarize / FidelitySummary ---

def test_summarize_and_sentence():
    rng = np.random.default_rng(5)
    long_means = np.array([0.60, 0.66, 0.64, 0.75, 0.85, 0.80])  # two swaps: tau = (13 - 2) / 15
    short, long = noisy_table(MEANS_SHORT, 0.01, 3, rng), noisy_table(long_means, 0.01, 2, rng)
    s = summarize(short, long, budget_factor=4, n_boot=500)
    assert isinstance(s, FidelitySummary)
    assert (s.n_candidates, s.seeds_short, s.seeds_long, s.budget_factor) == (6, 3, 2, 4.0)
    assert s.tau == pytest.approx(11 / 15)
    assert s.tau_low <= s.tau <= s.tau_high
    assert s.regret == pytest.approx(0.05)  # proxy picks the last (0.80 long); the best is 0.85
    assert s.seed_noise_short == pytest.approx(seed_noise(short))
    assert s.spread_over_noise_short == pytest.approx(0.25 / s.seed_noise_short)
    assert s.spread_over_noise_long == pytest.approx(0.25 / s.seed_noise_long)
    assert (s.leaders_short, s.leaders_long) == (leaders(short).sum(), leaders(long).sum())
    assert s.regret_beyond_noise is True  # 5 points at a seed std of 1 point
    assert s.sentence() == (
        f"6 candidates: proxy vs 4x budget Kendall tau 0.73 [{s.tau_low:.2f}, {s.tau_high:.2f}], "
        f"top-1 regret 5.0 points (beyond seed noise), spread {0.25 / s.seed_noise_short:.1f}x the seed noise"
    )


def test_regret_within_seed_noise_and_no_regret():
    short = [[0.50, 0.52], [0.60, 0.61]]  # the proxy picks the second
    noisy = summarize(short, [[0.70, 0.60], [0.62, 0.66]], budget_factor=2, n_boot=20)
    assert noisy.regret == pytest.approx(0.01) and noisy.regret_beyond_noise is False
    assert noisy.leaders_long == 2 and "top-1 regret 1.0 points (within seed noise)," in noisy.sentence()
    right = summarize(short, [[0.60, 0.61], [0.70, 0.71]], budget_factor=2, n_boot=20)
    assert right.regret == 0 and right.regret_beyond_noise is False
    assert "top-1 regret 0.0 points, spread" in right.sentence()  # nothing to qualify


def test_sentence_with_undefined_values():
    s = summarize([[0.5], [0.6]], [[0.7], [0.6]], budget_factor=2.5, n_boot=20)
    # one seed each: no noise estimate, so no spread; the ranking and regret are still defined
    assert s.tau == pytest.approx(-1.0)
    assert s.sentence() == (
        "2 candidates: proxy vs 2.5x budget Kendall tau -1.00 [-1.00, -1.00], "
        "top-1 regret 10.0 points, spread over seed noise n/a"
    )
