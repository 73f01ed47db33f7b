"""How far a proxy ranking of candidates can be trusted: rank agreement, regret and seed noise.

Every score is one measurement with noise. These functions put a number on that noise and on
how well the cheap proxy budget ranks candidates the way a longer budget does. Pure functions
on plain sequences and (candidates, seeds) arrays; NaN marks a missing run (a failed seed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from search.student_t import t_quantile, welch_df

# A margin is `separable` when Welch's one-sided t test at this level says the best's mean is higher.
SEPARABLE_LEVEL = 0.95


def _tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Compute tau-b along the last axis of two equally shaped arrays (NaN where undefined)."""
    # Pairwise signs: sx*sy sums to (concordant - discordant); sx^2 counts the pairs untied in x.
    iu = np.triu_indices(x.shape[-1], k=1)
    sx = np.sign(x[..., :, None] - x[..., None, :])[..., iu[0], iu[1]]
    sy = np.sign(y[..., :, None] - y[..., None, :])[..., iu[0], iu[1]]
    denom = np.sqrt((sx * sx).sum(-1) * (sy * sy).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (sx * sy).sum(-1) / np.where(denom > 0, denom, 1.0), np.nan)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Return Kendall's tau-b of two equal-length sequences; NaN with < 2 items or no variance."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D sequences of equal length, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))  # a candidate without a score has no rank
    x, y = x[keep], y[keep]
    if x.size < 2:
        return math.nan
    return float(_tau_b(x, y))


def _table(scores, name: str) -> np.ndarray:
    """Return scores as a 2-D float array shaped (candidates, seeds), or raise."""
    a = np.asarray(scores, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (candidates, seeds), got shape {a.shape}")
    return a


def _row_means(table: np.ndarray) -> np.ndarray:
    """Return each candidate's mean over its non-NaN seeds (NaN when it has none)."""
    counts = (~np.isnan(table)).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.nansum(table, 1) / np.maximum(counts, 1), np.nan)


def _resampled_means(table: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Return (n_boot, candidates) means, each drawn from the candidate's own seeds with replacement."""
    out = np.full((n_boot, table.shape[0]), np.nan)
    for i, row in enumerate(table):  # fixed order, so one rng_seed always gives the same draws
        seeds = row[~np.isnan(row)]
        if seeds.size:
            out[:, i] = seeds[rng.integers(0, seeds.size, size=(n_boot, seeds.size))].mean(1)
    return out


def bootstrap_tau_interval(per_seed_short, per_seed_long, n_boot: int = 2000, level: float = 0.95,
                           rng_seed: int = 0) -> tuple[float, float]:
    """Return a percentile bootstrap interval of the tau between short- and long-budget mean scores.

    Seeds are resampled within each candidate (independently per candidate and per budget), not
    candidates: the grid is a fixed set chosen by the search, not a sample from a population, and
    the question is whether *this* ranking survives seed noise. A case bootstrap would also
    duplicate candidates, creating ties that pull tau-b around for reasons unrelated to noise.
    A candidate with a single seed contributes no noise (its mean never changes), so few seeds
    make the interval too narrow rather than too wide. (NaN, NaN) if tau is never defined.
    Resampled means carry the seed noise on top of the observed means, which pulls tau toward 0:
    with many candidates the interval can sit just below the point estimate; read it as cautious.
    """
    short, long = _table(per_seed_short, "per_seed_short"), _table(per_seed_long, "per_seed_long")
    if short.shape[0] != long.shape[0]:
        raise ValueError(f"short has {short.shape[0]} candidates, long has {long.shape[0]}")
    rng = np.random.default_rng(rng_seed)
    a, b = _resampled_means(short, n_boot, rng), _resampled_means(long, n_boot, rng)
    keep = ~(np.isnan(a[0]) | np.isnan(b[0]))  # candidates with no seeds at all are NaN in every draw
    if keep.sum() < 2:
        return math.nan, math.nan
    taus = _tau_b(a[:, keep], b[:, keep])
    if np.isnan(taus).all():
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(taus, [tail, 100 - tail])
    return float(low), float(high)


def top1_regret(short_means: Sequence[float], long_means: Sequence[float]) -> float:
    """Return how much the proxy's pick loses under the long budget: max(long) - long[argmax(short)]."""
    s, l = np.asarray(short_means, dtype=float), np.asarray(long_means, dtype=float)
    if s.shape != l.shape or s.ndim != 1:
        raise ValueError(f"top1_regret needs two 1-D sequences of equal length, got {s.shape} and {l.shape}")
    if np.isnan(s).all() or np.isnan(l).all():
        return math.nan
    pick = int(np.nanargmax(s))  # nanargmax returns the first of tied maxima
    return float(np.nanmax(l) - l[pick])  # NaN if the pick has no long-budget score


def seed_std(scores: Sequence[float]) -> float:
    """Return the sample std (ddof=1) of one candidate's seed scores; NaN with fewer than 2 seeds.

    The one std convention of the project: error bars and trials.csv's score_std are this, and the
    margin's noise and search.fidelity use the same ddof=1.
    """
    s = np.asarray(scores, dtype=float)
    s = s[~np.isnan(s)]
    return float(s.std(ddof=1)) if s.size >= 2 else math.nan


def seed_noise(per_seed) -> float:
    """Return the pooled within-candidate std over seeds; NaN when no candidate has >= 2 seeds."""
    variances = []
    for row in _table(per_seed, "per_seed"):
        seeds = row[~np.isnan(row)]
        if seeds.size >= 2:  # one seed says nothing about noise
            variances.append(seeds.var(ddof=1))
    # Pool variances, not stds: the mean of stds is biased low with few seeds.
    return float(np.sqrt(np.mean(variances))) if variances else math.nan


def spread_over_noise(means: Sequence[float], noise: float) -> float:
    """Return (max - min) of the means divided by the noise; NaN when either is undefined or noise is 0."""
    m = np.asarray(means, dtype=float)
    m = m[np.isfinite(m)]
    if m.size == 0 or noise is None or not math.isfinite(noise) or noise <= 0:
        return math.nan  # zero noise would make any spread "infinitely" resolved, which no one measured
    return float((m.max() - m.min()) / noise)


def margin_verdict(scores_best: Sequence[float], scores_runner_up: Optional[Sequence[float]]) -> dict:
    """Return the best candidate's margin over the runner-up, its standard error, the margin needed
    to call it separable (Welch's one-sided t test at SEPARABLE_LEVEL), and a verdict."""
    # Plain floats and None, so the dict goes straight into best.yaml.
    best = np.asarray(scores_best, dtype=float)
    best = best[~np.isnan(best)]
    if scores_runner_up is None or len(scores_runner_up) == 0:
        return {"margin": None, "noise": None, "needed": None, "verdict": "no_runner_up"}
    runner = np.asarray(scores_runner_up, dtype=float)
    runner = runner[~np.isnan(runner)]
    if best.size == 0 or runner.size == 0:
        return {"margin": None, "noise": None, "needed": None, "verdict": "no_noise_estimate"}
    margin = float(best.mean() - runner.mean())
    if best.size < 2 or runner.size < 2:
        return {"margin": margin, "noise": None, "needed": None, "verdict": "no_noise_estimate"}
    # The standard error of a difference of two independent means rests on few seeds, so the margin
    # is held to Student's t at Welch's degrees of freedom, not to the normal's 1.645: 2.92 at 2 seeds each.
    var_best, var_runner = best.var(ddof=1), runner.var(ddof=1)
    se = float(math.sqrt(var_best / best.size + var_runner / runner.size))
    needed = t_quantile(SEPARABLE_LEVEL, welch_df(var_best, best.size, var_runner, runner.size)) * se
    verdict = "separable" if margin > needed else "within_noise"
    return {"margin": margin, "noise": se, "needed": needed, "verdict": verdict}


def leaders(per_seed) -> np.ndarray:
    """Return, per candidate, whether seed noise cannot rank it below the best mean: margin_verdict of
    the best over it is not `separable` (the best itself included; a candidate with fewer than 2 seeds
    cannot be excluded; one with no score is never a leader)."""
    table = _table(per_seed, "per_seed")
    means = _row_means(table)
    out = np.zeros(len(table), dtype=bool)
    if np.isnan(means).all():
        return out
    best = table[int(np.nanargmax(means))]
    for i, row in enumerate(table):
        out[i] = not np.isnan(means[i]) and margin_verdict(best, row)["verdict"] != "separable"
    return out


def epoch_rank_agreement(curves, final: Sequence[float]) -> list[float]:
    """Return, for each epoch, the Kendall tau between that epoch's accuracies and the final scores."""
    # A median pruner compares candidates at epoch e; that is sound only if epoch e already ranks
    # them as the end of training does.
    c = _table(curves, "curves")
    f = np.asarray(final, dtype=float)
    if f.shape != (c.shape[0],):
        raise ValueError(f"final needs one score per candidate ({c.shape[0]}), got shape {f.shape}")
    return [kendall_tau(c[:, e], f) for e in range(c.shape[1])]


def last_epoch_gain(curves: Sequence[Sequence[float]]) -> float:
    """Mean over seeds of the accuracy the last epoch added (NaN without two epochs in every curve).

    A gain well above the seed noise says the budget stopped a training still rising: its score
    ranks how fast a network learns, not how good it ends (Bello et al. 2021)."""
    if not curves or any(len(c) < 2 for c in curves):
        return math.nan
    return float(np.mean([c[-1] - c[-2] for c in curves]))


def earliest_trustworthy_epoch(agreement: Sequence[float], threshold: float = 0.6) -> Optional[int]:
    """Return the first 1-based epoch from which every later agreement is >= threshold, or None."""
    earliest = None
    for e in range(len(agreement), 0, -1):  # walk back from the last epoch while the streak holds
        value = agreement[e - 1]
        if value is None or not value >= threshold:  # NaN fails the comparison: not trustworthy
            break
        earliest = e
    return earliest


@dataclass(frozen=True)
class FidelitySummary:
    """How well the proxy budget's ranking matches a longer budget's, with the noise of both."""

    n_candidates: int
    seeds_short: int  # seed columns of the proxy table (a failed seed is NaN, still counted)
    seeds_long: int
    budget_factor: float  # long budget / proxy budget
    tau: float
    tau_low: float
    tau_high: float
    regret: float
    seed_noise_short: float
    seed_noise_long: float
    spread_over_noise_short: float
    spread_over_noise_long: float
    leaders_short: int  # candidates within seed noise of their budget's best (`leaders`)
    leaders_long: int
    regret_beyond_noise: Optional[bool]  # the long budget's best beats the proxy's pick separably; None: no estimate

    def sentence(self) -> str:
        """Return one plain-English line for a terminal."""
        def num(v, fmt):
            return "n/a" if v is None or not math.isfinite(v) else format(v, fmt)

        sn = self.spread_over_noise_short  # the proxy's own resolving power is what the line is about
        spread = f"spread {sn:.1f}x the seed noise" if math.isfinite(sn) else "spread over seed noise n/a"
        return (f"{self.n_candidates} candidates: proxy vs {self.budget_factor:g}x budget "
                f"Kendall tau {num(self.tau, '.2f')} [{num(self.tau_low, '.2f')}, {num(self.tau_high, '.2f')}], "
                f"top-1 regret {num(100 * self.regret, '.1f')} points"
                + (f" ({self.regret_noise()})" if self.regret_noise() else "") + ", " + spread)

    def regret_noise(self) -> str:
        return regret_noise_words(self.regret, self.regret_beyond_noise)


def regret_noise_words(regret: float | None, beyond_noise: bool | None) -> str:
    """'beyond seed noise' or 'within seed noise' for a regret above 0 with a noise estimate, else ''."""
    if regret is None or not regret > 0 or beyond_noise is None:  # NaN or none: nothing to qualify
        return ""
    return "beyond seed noise" if beyond_noise else "within seed noise"


def summarize(short, long, budget_factor: float, n_boot: int = 2000, level: float = 0.95,
              rng_seed: int = 0) -> FidelitySummary:
    """Compute a FidelitySummary from the proxy and long-budget (candidates, seeds) score tables."""
    short, long = _table(short, "short"), _table(long, "long")
    if short.shape[0] != long.shape[0]:
        raise ValueError(f"short has {short.shape[0]} candidates, long has {long.shape[0]}")
    ms, ml = _row_means(short), _row_means(long)
    low, high = bootstrap_tau_interval(short, long, n_boot=n_boot, level=level, rng_seed=rng_seed)
    noise_s, noise_l = seed_noise(short), seed_noise(long)
    return FidelitySummary(
        leaders_short=int(leaders(short).sum()), leaders_long=int(leaders(long).sum()),
        regret_beyond_noise=_regret_beyond_noise(ms, ml, long),
        n_candidates=short.shape[0], seeds_short=short.shape[1], seeds_long=long.shape[1],
        budget_factor=float(budget_factor), tau=kendall_tau(ms, ml), tau_low=low, tau_high=high,
        regret=top1_regret(ms, ml), seed_noise_short=noise_s, seed_noise_long=noise_l,
        spread_over_noise_short=spread_over_noise(ms, noise_s),
        spread_over_noise_long=spread_over_noise(ml, noise_l),
    )


def _regret_beyond_noise(short_means: np.ndarray, long_means: np.ndarray, long: np.ndarray) -> Optional[bool]:
    """Whether the long budget's best beats the proxy's pick separably; None where no estimate exists."""
    if np.isnan(short_means).all() or np.isnan(long_means).all():
        return None
    pick, best = int(np.nanargmax(short_means)), int(np.nanargmax(long_means))
    if pick == best:
        return False  # no regret at all
    verdict = margin_verdict(long[best], long[pick])["verdict"]
    return {"separable": True, "within_noise": False}.get(verdict)
