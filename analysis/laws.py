"""Fit accuracy against FLOPs on small networks, and predict larger ones.

Two laws, both in x = log(FLOPs / base FLOPs):
- `log_linear`: acc = a + b * x, two parameters;
- `saturating`: acc = a - b * exp(-c * x), i.e. a - b * (FLOPs ratio)^-c, a power law that
  levels off at `a`, three parameters.
`choose` keeps the saturating law only where it predicts left-out points better than the line
(leave-one-out): with a handful of noisy points, the simpler law is the honest default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXPONENTS = np.geomspace(0.01, 5.0, 400)  # the saturating law's c is searched on this grid


@dataclass(frozen=True)
class Law:
    name: str  # log_linear | saturating
    params: tuple[float, ...]  # (a, b) or (a, b, c)

    def predict(self, flops_ratio) -> np.ndarray:
        x = np.log(np.asarray(flops_ratio, dtype=float))
        if self.name == "log_linear":
            a, b = self.params
            return a + b * x
        a, b, c = self.params
        return a - b * np.exp(-c * x)


def _least_squares(columns: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, float]:
    design = np.stack(columns, axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return coef, float(np.sum((design @ coef - y) ** 2))


def log_linear(flops_ratio, accuracy) -> Law:
    x, y = np.log(np.asarray(flops_ratio, float)), np.asarray(accuracy, float)
    (a, b), _ = _least_squares([np.ones_like(x), x], y)
    return Law("log_linear", (float(a), float(b)))


def saturating(flops_ratio, accuracy) -> Law:
    """For each c of the grid, a and b are linear least squares; the c with the least error wins."""
    x, y = np.log(np.asarray(flops_ratio, float)), np.asarray(accuracy, float)
    if len(np.unique(x)) < 3:
        raise ValueError(f"a saturating law needs points at >= 3 FLOPs ratios, got {len(np.unique(x))}")
    best = None
    for c in EXPONENTS:
        (a, minus_b), error = _least_squares([np.ones_like(x), np.exp(-c * x)], y)
        if best is None or error < best[0]:
            best = (error, (float(a), float(-minus_b), float(c)))
    return Law("saturating", best[1])


def leave_one_out_error(fit, flops_ratio, accuracy) -> float:
    """Root mean square error of predicting each point from a fit to the others."""
    x, y = np.asarray(flops_ratio, float), np.asarray(accuracy, float)
    errors = [fit(np.delete(x, i), np.delete(y, i)).predict(x[i]) - y[i] for i in range(len(x))]
    return float(np.sqrt(np.mean(np.square(errors))))


def choose(flops_ratio, accuracy) -> Law:
    """The saturating law where it predicts left-out points better than the line; else the line."""
    if len(np.unique(flops_ratio)) < 4:  # leaving one out must leave >= 3 ratios to fit three parameters
        return log_linear(flops_ratio, accuracy)
    line = leave_one_out_error(log_linear, flops_ratio, accuracy)
    curve = leave_one_out_error(saturating, flops_ratio, accuracy)
    return saturating(flops_ratio, accuracy) if curve < line else log_linear(flops_ratio, accuracy)
