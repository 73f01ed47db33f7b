"""The share space: a scaling rule (models/rules.py) as Optuna's search space, at one FLOPs ratio.

A rule gives fractions of the log-FLOPs increase to depth, width and resolution, summing to 1: a
triangle. Optuna samples the depth and resolution fractions in [0, 1]; the half of the unit square
beyond the diagonal is folded back onto the other half, so a uniform sample of the square is a
uniform sample of the triangle, and every rule is reachable.

At the search's target ratio s the rule sets d = s^depth_fraction and r = s^(resolution_fraction / 2);
width takes the rest, solved on the measured multiply-adds (search/plan/series.py's bisection), so
the network costs s times the proxy base. Why not the formula's width: on a small proxy, rounding
repeats up adds a block to every stage as soon as d > 1, so the formula point misses its target by
up to 2x over most of the triangle. For the same reason depth moves in the grid's steps
(search.alpha.step): otherwise no rule with a depth share above zero could keep the base's depth.
A rule whose depth and resolution alone overshoot keeps w = 1 and, like an off-target grid point,
is dropped (MobileNetV2's default proxy at s = 2: about a quarter of the triangle is on target,
20 distinct networks).
"""

from __future__ import annotations

from models.rules import Rule, from_flops_fractions
from search.plan.candidates import ProxyBase, describe
from search.plan.grid import SLACK, Candidate
from search.plan.series import UPPER_LIMIT, bisect_flops
from search.record import SHARE_PARAMS

SERIES = "shares"
RANGES = {name: (0.0, 1.0) for name in SHARE_PARAMS}  # the Optuna distribution of each param


def folded_rule(depth_fraction: float, resolution_fraction: float) -> Rule:
    """The rule giving these fractions of the log-FLOPs increase to depth and resolution (the rest
    to width); a point beyond the diagonal (sum > 1) is reflected through (0.5, 0.5) onto the triangle."""
    d, r = depth_fraction, resolution_fraction
    if d + r > 1:
        d, r = 1 - d, 1 - r
    return from_flops_fractions(d, max(0.0, 1 - d - r), r)


def share_point(proxy: ProxyBase, rule: Rule, target: float, depth_step: float) -> Candidate:
    """The proxy base scaled by the rule's depth (to the nearest `depth_step`) and resolution at FLOPs
    ratio `target`, its width solved so the measured multiply-adds are `target` times the base's;
    (alpha, beta, gamma) = (d, w, r)."""
    d, _, r = rule.multipliers(target)
    d, r = round(round(d / depth_step) * depth_step, 10), round(r, 4)
    goal = target * proxy.macs(Candidate(1.0, 1.0, 1.0))
    w = bisect_flops(lambda width: proxy.macs(Candidate(d, width, r)), goal, 1.0, UPPER_LIMIT["w"])
    return Candidate(d, w, r, SERIES, d, w, r, phi=1.0, target_flops=goal)


def share_record(proxy: ProxyBase, params: dict, search) -> dict:
    """The candidate record of a sampled point, with the Optuna params it came from; `kept` when its
    measured FLOPs are within search.flops_tolerance of search.target (then traced by fvcore, like a
    kept grid point). Depth goes in the grid's steps (search.alpha.step)."""
    target = search.target
    c = share_point(proxy, folded_rule(*(params[name] for name in SHARE_PARAMS)), target, search.alpha.step)
    base_flops = proxy.macs(Candidate(1.0, 1.0, 1.0))
    kept = abs(proxy.macs(c) / base_flops / target - 1) <= search.flops_tolerance + SLACK
    rec = describe(proxy, c, base_flops, counted=kept) | {"kept": kept} | dict(params)
    return rec if proxy.built else rec | {"key": network_key(proxy, c)}


def network_key(proxy: ProxyBase, c: Candidate) -> str:
    """The network itself (repeats, channels, input size): many nearby rules round to one network,
    which is trained once."""
    spec = proxy.spec(c)
    repeats = "-".join(str(stage.repeats) for stage in spec.stages)
    channels = "-".join(str(ch) for ch in (spec.stem_channels, *(stage.channels for stage in spec.stages), spec.head_channels))
    return f"{proxy.name}-{proxy.variant}:repeats={repeats},channels={channels},res={proxy.resolution_for(c.r)}"
