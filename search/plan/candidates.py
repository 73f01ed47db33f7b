"""Planning: the run's candidate records, the hand-off to training (candidates.csv).

A candidate is the proxy base scaled by (d, w, r): a grid point (search/plan/grid.py) or a point
of an experiment's series (search/plan/series.py). Rounding (channels to multiples of 8, repeats
up, pixels to integers) moves the real FLOPs away from the formula alpha * beta^2 * gamma^2, so
every candidate is built and measured, and both ratios are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from models import BUILDERS, build_model, scaled_resolution, scaled_spec
from models.complexity import measure, multiply_adds
from search.config import BaseConfig, ConfigError, SeriesConfig
from search.plan import grid as grid_math
from search.plan.grid import SLACK, Candidate
from search.plan.series import experiment_points

log = logging.getLogger("search")
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


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

    @classmethod
    def of(cls, base: BaseConfig, num_classes: int, in_channels: int) -> "ProxyBase":
        """The proxy base a config's `base` group describes, for a data set's classes and channels."""
        return cls(base.name, base.variant, base.depth, base.width, base.resolution, num_classes, in_channels,
                   base.resolution_divisor)

    def resolution_for(self, r: float) -> int:
        return scaled_resolution(self.resolution, r, self.resolution_divisor)

    @property
    def built(self) -> bool:
        """A network from a builder function (models/own.py): no stage table to read shapes from."""
        return self.name in BUILDERS

    def multipliers(self, c: Candidate) -> tuple[float, float]:
        return round(self.depth * c.d, 10), round(self.width * c.w, 10)

    def spec(self, c: Candidate):
        return scaled_spec(self.name, *self.multipliers(c), self.variant)

    def macs(self, c: Candidate) -> int:
        """Conv + linear multiply-adds (what `complexity(c).flops` counts), without a trace where a stage table exists."""
        return multiply_adds(self.name, *self.multipliers(c), self.resolution_for(c.r), self.num_classes,
                             self.in_channels, self.variant)

    def params(self, c: Candidate) -> int:
        if self.built:
            return self.complexity(c).params
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = build_model(self.spec(c), self.num_classes, self.in_channels)
        return sum(p.numel() for p in model.parameters())

    def complexity(self, c: Candidate):
        return measure(self.name, *self.multipliers(c), self.resolution_for(c.r), self.num_classes, self.in_channels,
                       self.variant)


def describe(proxy: ProxyBase, c: Candidate, base_flops: int, counted: bool = True) -> dict:
    """The candidate record: coefficients, absolute multipliers, size and cost.

    `counted`: traced by fvcore. Otherwise (a grid point the FLOPs filter drops) the FLOPs come
    from the shapes alone, the same number (tests/test_complexity.py), and fvcore's own total and
    the activations are left empty."""
    if counted:
        cx = proxy.complexity(c)
        params, flops, fvcore_flops, activations = cx.params, cx.flops, cx.fvcore_flops, cx.activations
    else:
        params, flops, fvcore_flops, activations = proxy.params(c), proxy.macs(c), None, None
    (depth, width), resolution = proxy.multipliers(c), proxy.resolution_for(c.r)
    # Grid points are unique by their coefficients; experiment series share points (every
    # Fig. 3 line starts at the base), so there the key is the network and input size itself.
    key = c.key if c.series == "grid" else f"{proxy.name}-{proxy.variant}:depth={depth:g},width={width:g},res={resolution}"
    return dict(
        key=key, series=c.series, base=proxy.name, variant=proxy.variant, num_classes=proxy.num_classes,
        in_channels=proxy.in_channels, alpha=c.alpha, beta=c.beta,
        gamma=c.gamma, phi=c.phi, d=c.d, w=c.w, r=c.r, depth=depth, width=width, resolution=resolution,
        params=params, flops=flops, fvcore_flops=fvcore_flops, activations=activations,
        formula_ratio=round(c.formula_ratio, 6), measured_ratio=round(flops / base_flops, 6),
        target_flops=c.target_flops,
    )


def measure_and_filter(proxy: ProxyBase, candidates, target: float, flops_tolerance: float, max_candidates=None):
    """Records of all candidates with `kept` set where the measured ratio is within tolerance.

    With `max_candidates`, only that many are kept: those whose measured ratio is closest. The
    filter reads FLOPs from the shapes (about 1000x faster than a trace); fvcore then counts
    the kept candidates, the networks that are trained.
    """
    base_flops = proxy.complexity(Candidate(1.0, 1.0, 1.0)).flops
    ratios = [round(proxy.macs(c) / base_flops, 6) for c in candidates]
    kept = [abs(ratio / target - 1) <= flops_tolerance + SLACK for ratio in ratios]
    if max_candidates is not None:
        closest = sorted((i for i, k in enumerate(kept) if k), key=lambda i: abs(ratios[i] - target))
        for i in closest[max_candidates:]:
            kept[i] = False
    return [describe(proxy, c, base_flops, counted=k) | {"kept": k} for c, k in zip(candidates, kept)]


def plan_candidates(cfg, proxy: ProxyBase) -> list[dict]:
    """The candidate records of the run: the experiment's series when it has any, else the grid; none
    for a share search, whose sampler proposes them as it goes (search/trials/shares.py)."""
    if cfg.search.space == "shares":
        if cfg.search.target <= 1:
            raise ConfigError(f"search.target={cfg.search.target}: a share search scales the base up, use a FLOPs ratio > 1")
        return []
    return plan_series(cfg, proxy) if cfg.series else plan_grid(cfg, proxy)


def plan_grid(cfg, proxy: ProxyBase) -> list[dict]:
    """The grid's candidate records, measured; raises ConfigError when nothing is feasible."""
    s = cfg.search
    axes = [grid_math.axis_values(r.min, r.max, r.step) for r in (s.alpha, s.beta, s.gamma)]
    points = grid_math.grid(*axes, target=s.target, tolerance=s.tolerance)
    if not points:
        closest, (a, b, g) = grid_math.closest_product(*axes, s.target)
        raise ConfigError(
            f"no grid point has alpha*beta^2*gamma^2 within search.tolerance={s.tolerance} of "
            f"search.target={s.target}: the closest is {closest:.4f} at ({a}, {b}, {g}); widen the ranges or the tolerance"
        )
    records = measure_and_filter(proxy, points, s.target, s.flops_tolerance, s.max_candidates)
    if not any(r["kept"] for r in records):
        closest = min(records, key=lambda r: abs(r["measured_ratio"] - s.target))
        raise ConfigError(
            f"no candidate's measured FLOPs ratio is within search.flops_tolerance={s.flops_tolerance} of "
            f"search.target={s.target}: the closest is {closest['measured_ratio']:.3f} ({closest['key']}); "
            "raise the tolerance or refine the grid"
        )
    return records


def series_base(proxy: ProxyBase, choice) -> ProxyBase:
    """The proxy base of a series, always on the run's data: the run's (None); a conf/base option by
    name, or with some fields changed ({name: resnet50, width: 0.25}); or a whole base with a `spec`
    or `builder`, as Hydra composes one from any config folder (`- /base@series.<series>.base: <option>`)."""
    if choice is None:
        return proxy
    fields = dict(choice) if isinstance(choice, Mapping) else {"name": choice}
    path = CONF_DIR / "base" / f"{fields.get('name')}.yaml"
    if path.is_file():
        base = OmegaConf.merge(OmegaConf.structured(BaseConfig), OmegaConf.load(path), fields)
    elif fields.get("spec") is not None or fields.get("builder") is not None:
        base = OmegaConf.merge(OmegaConf.structured(BaseConfig), fields)  # registered by validate.use_own_bases
    else:
        options = sorted(p.stem for p in (CONF_DIR / "base").glob("*.yaml"))
        raise ConfigError(f"series base={fields.get('name')!r} is not one of: {', '.join(options)} (a base of your "
                          "own: compose it whole with `- /base@series.<series>.base: <option>` in the defaults)")
    return ProxyBase.of(base, proxy.num_classes, proxy.in_channels)


def plan_series(cfg, proxy: ProxyBase) -> list[dict]:
    """An experiment's candidate records: one per (series, point), points solved and measured."""
    series = {name: SeriesConfig(**OmegaConf.to_container(sc, resolve=True)) for name, sc in cfg.series.items()}
    proxies = {name: series_base(proxy, s.base) for name, s in series.items()}
    points = experiment_points(series, lambda name, c: proxies[name].macs(c))
    records = []
    for name in series:
        own = proxies[name]
        base_flops = own.complexity(Candidate(1.0, 1.0, 1.0)).flops
        for c in points[name]:
            rec = describe(own, c, base_flops) | {"kept": True}
            miss = rec["flops"] / c.target_flops - 1 if c.target_flops == c.target_flops else 0.0
            if abs(miss) > cfg.search.match_tolerance:
                log.warning("series %s: %s is %+.1f%% off its FLOPs target (rounding allows no closer point)",
                            name, rec["key"], 100 * miss)
            records.append(rec)
    return records


def unique_points(records: list[dict]) -> list[dict]:
    """One record per key (series that share a point share its trial), naming all its series."""
    by_key: dict[str, dict] = {}
    for rec in records:
        if rec["key"] in by_key:
            by_key[rec["key"]]["series"] += "+" + rec["series"]
        else:
            by_key[rec["key"]] = dict(rec)
    return list(by_key.values())
