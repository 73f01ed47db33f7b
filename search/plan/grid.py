"""The constrained (alpha, beta, gamma) grid and the candidate point: pure functions, no networks.

A candidate is the proxy base scaled by (d, w, r). For the grid, d = alpha, w = beta, r = gamma
(phi = 1); experiments define other series of (d, w, r) explicitly (search/plan/series.py).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

SLACK = 1e-9  # products within this of the tolerance edge count as inside


@dataclass(frozen=True)
class Candidate:
    d: float  # depth multiplier relative to the proxy base
    w: float  # width multiplier relative to the proxy base
    r: float  # resolution multiplier relative to the proxy base
    series: str = "grid"  # which grid or experiment series it belongs to
    alpha: float = math.nan  # the grid coefficients (NaN outside the grid)
    beta: float = math.nan
    gamma: float = math.nan
    phi: float = math.nan  # compound coefficient (grid points are phi = 1)
    target_flops: float = math.nan  # the FLOPs a solved point was matched to (experiments)

    @property
    def formula_ratio(self) -> float:
        """FLOPs growth the scaling law predicts: d * w^2 * r^2."""
        return self.d * self.w**2 * self.r**2

    @property
    def key(self) -> str:
        """Stable identity of a candidate inside a study."""
        return f"{self.series}:d={self.d:g},w={self.w:g},r={self.r:g}"


def axis_values(lo: float, hi: float, step: float) -> list[float]:
    """lo, lo + step, ... <= hi, free of float drift (1.0 + 3 * 0.1 is 1.3, not 1.3000000000000003)."""
    count = math.floor((hi - lo) / step + SLACK)
    return [round(lo + i * step, 10) for i in range(count + 1)]


def product(alpha: float, beta: float, gamma: float) -> float:
    return alpha * beta**2 * gamma**2


def grid(alphas, betas, gammas, target: float = 2.0, tolerance: float = 0.05) -> list[Candidate]:
    """Every (alpha, beta, gamma) with |alpha * beta^2 * gamma^2 - target| <= tolerance."""
    return [
        Candidate(a, b, g, "grid", a, b, g, phi=1.0)
        for a, b, g in itertools.product(alphas, betas, gammas)
        if abs(product(a, b, g) - target) <= tolerance + SLACK
    ]


def closest_product(alphas, betas, gammas, target: float) -> tuple[float, tuple[float, float, float]]:
    """The reachable product nearest the target, and a point that reaches it (for error messages)."""
    point = min(itertools.product(alphas, betas, gammas), key=lambda p: abs(product(*p) - target))
    return product(*point), point
