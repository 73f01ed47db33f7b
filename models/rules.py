"""Scaling rules as data: the shares of a FLOPs increase given to depth, width and resolution.

FLOPs grow as d * w^2 * r^2, so a rule that scales FLOPs by s with shares (e_d, e_w, e_r),
e_d + 2 e_w + 2 e_r = 1, sets d = s^e_d, w = s^e_w, r = s^e_r. Every rule is a point of that
simplex: EfficientNet's (1.2, 1.1, 1.15) is one, single-dimension scaling are its corners, and
pycls's fast rule (Dollar, Singh, Girshick 2021) gives 80% of the FLOPs to width. The rule with
shares e is also a set of compound coefficients, (alpha, beta, gamma) = exp(e): alpha * beta^2 *
gamma^2 = e, so phi = ln(s), and the series solver scales by any rule as it scales by the paper's.

Activations (the outputs of every layer, which drive memory and accelerator runtime) grow as
d * w * r^2, so as s^(e_d + e_w + 2 e_r): 0.6 for the fast rule, 0.85 for EfficientNet's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """Shares of log-FLOPs: d = s^depth, w = s^width, r = s^resolution for a FLOPs ratio s."""

    depth: float
    width: float
    resolution: float

    def __post_init__(self):
        shares = (self.depth, self.width, self.resolution)
        if min(shares) < 0 or not math.isclose(self.depth + 2 * self.width + 2 * self.resolution, 1, abs_tol=1e-6):
            raise ValueError(f"shares (depth, width, resolution) = {shares} must be >= 0 with "
                             "depth + 2 * width + 2 * resolution = 1")

    def multipliers(self, flops_ratio: float) -> tuple[float, float, float]:
        """(d, w, r) of the formula for this FLOPs ratio (rounding then makes the measured ratio differ)."""
        return tuple(flops_ratio**share for share in (self.depth, self.width, self.resolution))

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """(alpha, beta, gamma) whose phi is ln(FLOPs ratio): alpha * beta^2 * gamma^2 = e."""
        return math.exp(self.depth), math.exp(self.width), math.exp(self.resolution)

    @property
    def activation_slope(self) -> float:
        """d log(activations) / d log(FLOPs): activations grow as d * w * r^2."""
        return self.depth + self.width + 2 * self.resolution


def from_coefficients(alpha: float, beta: float, gamma: float) -> Rule:
    """The rule of compound coefficients: each one's share of log(alpha * beta^2 * gamma^2)."""
    total = math.log(alpha * beta**2 * gamma**2)
    if min(alpha, beta, gamma) < 1 or total <= 0:
        raise ValueError(f"coefficients ({alpha}, {beta}, {gamma}) must be >= 1 and not all 1")
    return Rule(math.log(alpha) / total, math.log(beta) / total, math.log(gamma) / total)


def from_flops_fractions(depth: float, width: float, resolution: float) -> Rule:
    """The rule that gives these fractions of the log-FLOPs increase (summing to 1) to each axis."""
    return Rule(depth, width / 2, resolution / 2)


RULES: dict[str, Rule] = {
    "efficientnet": from_coefficients(1.2, 1.1, 1.15),  # Tan & Le 2019, the paper's grid search
    "fast": from_flops_fractions(0.1, 0.8, 0.1),  # pycls scaler's d1_w8_g8_r1 (Dollar et al. 2021)
    # Our reading of ResNet-RS (Bello et al. 2021): depth first, resolution slowly, the widths kept.
    "depth_first": from_flops_fractions(0.8, 0.0, 0.2),
    "depth": Rule(1.0, 0.0, 0.0),
    "width": Rule(0.0, 0.5, 0.0),
    "resolution": Rule(0.0, 0.0, 0.5),
}
