"""Candidates: the constrained (alpha, beta, gamma) grid and its measured-FLOPs filter.

A candidate is the proxy base scaled by (d, w, r). For the grid, d = alpha, w = beta, r = gamma
(phi = 1); experiments define other series of (d, w, r) explicitly. Rounding (channels to
multiples of 8, repeats up, pixels to integers) moves the real FLOPs away from the formula
alpha * beta^2 * gamma^2, so every candidate is built and measured, and both ratios are kept.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from models import build_model, scaled_resolution, scaled_spec
from models.macs import conv_linear_macs
from search.complexity import measure_spec

_SLACK = 1e-9  # products within this of the tolerance edge count as inside

# The candidate record, named once: candidates.csv, trial user attrs, trials.csv and plots.
CANDIDATE_COLUMNS = [
    "key", "series", "base", "variant", "num_classes", "in_channels", "alpha", "beta", "gamma", "phi", "d", "w", "r", "depth", "width",
    "resolution", "params", "flops", "fvcore_flops", "activations", "formula_ratio", "measured_ratio",
    "target_flops", "kept",
]


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
    count = math.floor((hi - lo) / step + _SLACK)
    return [round(lo + i * step, 10) for i in range(count + 1)]


def product(alpha: float, beta: float, gamma: float) -> float:
    return alpha * beta**2 * gamma**2


def grid(alphas, betas, gammas, target: float = 2.0, tolerance: float = 0.05) -> list[Candidate]:
    """Every (alpha, beta, gamma) with |alpha * beta^2 * gamma^2 - target| <= tolerance."""
    return [
        Candidate(a, b, g, "grid", a, b, g, phi=1.0)
        for a, b, g in itertools.product(alphas, betas, gammas)
        if abs(product(a, b, g) - target) <= tolerance + _SLACK
    ]


def closest_product(alphas, betas, gammas, target: float) -> tuple[float, tuple[float, float, float]]:
    """The reachable product nearest the target, and a point that reaches it (for error messages)."""
    point = min(itertools.product(alphas, betas, gammas), key=lambda p: abs(product(*p) - target))
    return product(*point), point


@dataclass(frozen=True)
class ProxyBase:
    """The network every candidate scales: a base at (depth, width, resolution) for a data set."""

    name: str
    variant: str
    depth: float
    width: float
    resolution: int
    num_classes: int
    in_channels: int
    resolution_divisor: int = 1

    def resolution_for(self, r: float) -> int:
        return scaled_resolution(self.resolution, r, self.resolution_divisor)

    def spec(self, c: Candidate):
        return scaled_spec(self.name, round(self.depth * c.d, 10), round(self.width * c.w, 10), self.variant)

    def macs(self, c: Candidate) -> int:
        """Conv + linear multiply-adds from shapes alone (what `complexity(c).flops` counts)."""
        return conv_linear_macs(self.spec(c), self.resolution_for(c.r), self.num_classes, self.in_channels)

    def params(self, c: Candidate) -> int:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = build_model(self.spec(c), self.num_classes, self.in_channels)
        return sum(p.numel() for p in model.parameters())

    def complexity(self, c: Candidate):
        return measure_spec(self.spec(c), self.resolution_for(c.r), self.num_classes, self.in_channels)


def describe(base: ProxyBase, c: Candidate, base_flops: int, counted: bool = True) -> dict:
    """The candidate record: coefficients, absolute multipliers, size and cost.

    `counted`: traced by fvcore. Otherwise (a grid point the FLOPs filter drops) the FLOPs come
    from the shapes alone, the same number (tests/test_complexity.py), and fvcore's own total and
    the activations are left empty."""
    if counted:
        cx = base.complexity(c)
        params, flops, fvcore_flops, activations = cx.params, cx.flops, cx.fvcore_flops, cx.activations
    else:
        params, flops, fvcore_flops, activations = base.params(c), base.macs(c), None, None
    depth, width, resolution = round(base.depth * c.d, 10), round(base.width * c.w, 10), base.resolution_for(c.r)
    # Grid points are unique by their coefficients; experiment series share points (every
    # Fig. 3 line starts at the base), so there the key is the network and input size itself.
    key = c.key if c.series == "grid" else f"{base.name}-{base.variant}:depth={depth:g},width={width:g},res={resolution}"
    return dict(
        key=key, series=c.series, base=base.name, variant=base.variant, num_classes=base.num_classes,
        in_channels=base.in_channels, alpha=c.alpha, beta=c.beta,
        gamma=c.gamma, phi=c.phi, d=c.d, w=c.w, r=c.r, depth=depth, width=width, resolution=resolution,
        params=params, flops=flops, fvcore_flops=fvcore_flops, activations=activations,
        formula_ratio=round(c.formula_ratio, 6), measured_ratio=round(flops / base_flops, 6),
        target_flops=c.target_flops,
    )


def measure_and_filter(base: ProxyBase, candidates, target: float, flops_tolerance: float, max_candidates=None):
    """Records of all candidates with `kept` set where the measured ratio is within tolerance.

    With `max_candidates`, only that many are kept: those whose measured ratio is closest. The
    filter reads FLOPs from the shapes (about 1000x faster than a trace); fvcore then counts
    the kept candidates, the networks that are trained.
    """
    base_flops = base.complexity(Candidate(1.0, 1.0, 1.0)).flops
    ratios = [round(base.macs(c) / base_flops, 6) for c in candidates]
    kept = [abs(ratio / target - 1) <= flops_tolerance + _SLACK for ratio in ratios]
    if max_candidates is not None:
        closest = sorted((i for i, k in enumerate(kept) if k), key=lambda i: abs(ratios[i] - target))
        for i in closest[max_candidates:]:
            kept[i] = False
    return [describe(base, c, base_flops, counted=k) | {"kept": k} for c, k in zip(candidates, kept)]
