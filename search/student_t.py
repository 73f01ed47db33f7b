"""Student's t distribution for Welch's test on a few seeds, in plain Python (scipy is not a dependency).

With two seeds a candidate, the standard error of a difference of means rests on about two degrees
of freedom, and a margin of twice it is reached by chance far more often than the normal
distribution says: the one-sided 95% quantile of t is 2.92 at 2 degrees of freedom, 6.31 at 1.
"""

from __future__ import annotations

import math

_TINY = 1e-300  # keeps the continued fraction's denominators off zero (modified Lentz)


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, by the modified Lentz method."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    value = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even step
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # odd step
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            value *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return value


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):  # where the fraction converges fast; else use I_x(a, b) = 1 - I_{1-x}(b, a)
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` > 0 degrees of freedom (fractional df allowed: Welch's)."""
    if df <= 0:
        raise ValueError(f"df={df!r}: Student's t needs df > 0")
    tail = 0.5 * regularized_beta(df / 2, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p, for 0 < p < 1 and df > 0 (bisection on t_cdf, to about 1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p={p!r}: a quantile needs 0 < p < 1")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:  # the upper tail is heavy at small df: grow the bracket first
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
        if high - low < 1e-10 * max(1.0, high):
            break
    return 0.5 * (low + high)


def welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of the difference of two means (n >= 2 each).

    With no variance at all the pooled n_a + n_b - 2 is returned: the ratio is 0/0 there."""
    share_a, share_b = var_a / n_a, var_b / n_b
    denominator = share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1)
    return (share_a + share_b) ** 2 / denominator if denominator > 0 else float(n_a + n_b - 2)
