"""Experiment series: explicit (d, w, r) points, compound families, and points solved for FLOPs.

A series is one line of a figure: points of one proxy base. It is data (conf/experiment/*.yaml):

    width:    {w: [1.0, 1.4, 1.8]}                       explicit points (lists broadcast)
    compound: {phi: [0, 1, 2], coefficients: paper}      d, w, r = alpha^phi, beta^phi, gamma^phi
    depth:    {solve: d, match: compound}                d solved so the measured FLOPs equal
                                                         each compound point's (Fig. 8)
    compound: {solve: phi, flops_ratio: [4.33]}          phi solved for a FLOPs ratio (Table 3)
    fast:     {solve: phi, flops_ratio: [2, 4], coefficients: fast}   any scaling rule (models/rules.py)

Solving uses bisection on the *measured* count: rounding makes FLOPs a step function of d, w
and r, so the formula d * w^2 * r^2 can be far off while the measured count is what we compare.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import yaml

from models.reference import PAPER_ALPHA_BETA_GAMMA
from models.rules import RULES, Rule
from search.config import ConfigError, SeriesConfig
from search.plan.grid import Candidate

SOLVABLE = ("d", "w", "r", "phi")
UPPER_LIMIT = {"d": 64.0, "w": 64.0, "r": 16.0, "phi": 32.0}  # where the search for a bracket gives up


class SeriesError(ConfigError):
    """A series definition that cannot produce points; the message names the series and value."""


def as_list(value) -> list[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]


def broadcast(d, w, r) -> list[tuple[float, float, float]]:
    """Points from d, w, r given as numbers or equal-length lists (a number repeats)."""
    axes = [as_list(v) for v in (d, w, r)]
    length = max(len(a) for a in axes)
    if any(len(a) not in (1, length) for a in axes):
        raise SeriesError(f"d, w and r lists must have one length or a single value: got {[len(a) for a in axes]}")
    return [tuple(a[i] if len(a) > 1 else a[0] for a in axes) for i in range(length)]


def compound(coefficients: Sequence[float], phi: float) -> tuple[float, float, float]:
    """(d, w, r) = (alpha^phi, beta^phi, gamma^phi), rounded to stay readable in tables."""
    return tuple(round(c**phi, 6) for c in coefficients)


def coefficients_from(source) -> tuple[float, float, float]:
    """alpha, beta, gamma from "paper", a rule of models/rules.py by name or as its shares
    ({depth, width, resolution}), a list of three numbers, or a search's best.yaml."""
    if isinstance(source, str) and source in RULES:
        return RULES[source].coefficients
    if isinstance(source, Mapping):
        try:
            return Rule(**{key: float(value) for key, value in source.items()}).coefficients
        except (TypeError, ValueError) as e:
            raise SeriesError(f"coefficients={dict(source)}: {e} (keys: depth, width, resolution)") from None
    if isinstance(source, (list, tuple)):
        values = tuple(float(v) for v in source)
        if len(values) != 3 or min(values) < 1:
            raise SeriesError(f"coefficients={list(source)} must be three numbers >= 1 (alpha, beta, gamma)")
        return values
    if source == "paper":
        return PAPER_ALPHA_BETA_GAMMA
    path = Path(str(source))
    if not path.is_file():
        raise SeriesError(f"coefficients={source!r} is neither 'paper', a rule ({', '.join(RULES)}), "
                          "{depth, width, resolution} shares, [alpha, beta, gamma] nor a best.yaml file")
    try:
        best = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        mark = getattr(e, "problem_mark", None)
        first = f"{getattr(e, 'problem', None) or type(e).__name__}" + (f" at line {mark.line + 1}" if mark else "")
        raise SeriesError(f"coefficients={source!r} is not valid YAML ({first}): expected a search's best.yaml") from None
    try:
        return tuple(float(best[k]) for k in ("alpha", "beta", "gamma"))
    except (KeyError, TypeError, ValueError):
        raise SeriesError(f"{path} has no alpha, beta and gamma: is it a search's best.yaml?") from None


def bisect_flops(flops_at: Callable[[float], int], target: float, lo: float, hi: float, tol: float = 1e-3) -> float:
    """The x in [lo, hi] whose measured FLOPs are nearest `target`.

    `flops_at` is non-decreasing but stepped; bisection brackets the step that crosses the target
    and the nearer side of that step wins. `hi` grows (doubling) until it reaches the target.
    """
    if flops_at(lo) >= target:
        return lo
    start, limit = lo, hi
    hi = start + 1.0
    while flops_at(hi) < target:
        if hi >= limit:
            return hi
        lo, hi = hi, min(limit, start + 2 * (hi - start))
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if flops_at(mid) < target else (lo, mid)
    lo, hi = math.floor(lo / tol) * tol, math.ceil(hi / tol) * tol  # readable values on the same sides
    lo, hi = round(lo, 6), round(hi, 6)
    return lo if abs(flops_at(lo) - target) < abs(flops_at(hi) - target) else hi


def series_points(
    name: str, spec: SeriesConfig, flops_of: Callable[[Candidate], int], earlier: dict[str, list[tuple[float, float]]]
) -> list[Candidate]:
    """The candidates of series `name`, measured with `flops_of` (its own base).

    `earlier` holds (flops, phi) of each point of the series defined before this one; solved
    points carry the FLOPs they were solved for in `target_flops`.
    """
    if spec.solve is None:
        if spec.phi is not None:
            coeffs = coefficients_from(spec.coefficients)
            return [Candidate(*compound(coeffs, p), name, *coeffs, phi=p) for p in as_list(spec.phi)]
        return [Candidate(d, w, r, name) for d, w, r in broadcast(spec.d, spec.w, spec.r)]

    if spec.solve not in SOLVABLE:
        raise SeriesError(f"series {name}: solve={spec.solve!r} is not one of: {', '.join(SOLVABLE)}")
    if (spec.match is None) == (spec.flops_ratio is None):
        raise SeriesError(f"series {name}: solve={spec.solve} needs exactly one of match or flops_ratio")
    if spec.match is not None:
        if spec.match not in earlier:
            raise SeriesError(
                f"series {name}: match={spec.match!r} must name a series defined before it: {', '.join(earlier) or 'none'}"
            )
        targets = earlier[spec.match]
    else:
        base = float(flops_of(Candidate(1.0, 1.0, 1.0)))
        targets = [(base * ratio, math.nan) for ratio in as_list(spec.flops_ratio)]

    fixed = {k: as_list(getattr(spec, k)) for k in ("d", "w", "r")}
    if any(len(v) != 1 for v in fixed.values()):
        raise SeriesError(f"series {name}: with solve, d, w and r must be single numbers")
    coeffs = coefficients_from(spec.coefficients) if spec.solve == "phi" else (math.nan,) * 3

    def point(x: float, phi: float = math.nan) -> Candidate:
        if spec.solve == "phi":
            return Candidate(*compound(coeffs, x), name, *coeffs, phi=x)
        dwr = {k: v[0] for k, v in fixed.items()} | {spec.solve: x}
        return Candidate(dwr["d"], dwr["w"], dwr["r"], name, phi=phi)

    lo = 0.0 if spec.solve == "phi" else 1.0
    out = []
    for target, phi in targets:
        x = bisect_flops(lambda v: flops_of(point(v)), target, lo, UPPER_LIMIT[spec.solve])
        out.append(dataclasses.replace(point(x, phi), target_flops=target))
    return out


def experiment_points(
    series: dict[str, SeriesConfig], flops_of: Callable[[str, Candidate], int]
) -> dict[str, list[Candidate]]:
    """Every series' points, in the order the series are defined; flops_of(series name, candidate)."""
    points: dict[str, list[Candidate]] = {}
    measured: dict[str, list[tuple[float, float]]] = {}
    for name, spec in series.items():
        series_flops = lambda c, name=name: flops_of(name, c)  # noqa: E731
        points[name] = series_points(name, spec, series_flops, measured)
        measured[name] = [(float(series_flops(c)), c.phi) for c in points[name]]
    return points
