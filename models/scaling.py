"""Compound-scaling math: the official rounding rules and the resolution rule (pure functions).

The rules follow the TensorFlow EfficientNet reference: channel counts are multiplied by the
width coefficient and rounded to the nearest multiple of 8 (never more than 10% below the exact
product); stage repeats are multiplied by the depth coefficient and rounded up.
"""

from __future__ import annotations

import math

CHANNEL_DIVISOR = 8
# Products like 2.2 * 25 = 55.00000000000001 must not be rounded up to 56: treat anything
# within this distance of an integer as that integer.
_FLOAT_SLACK = 1e-9


def round_filters(channels: int, width: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """Scale a channel count by `width` and round it the way the official code does."""
    if width <= 0:
        raise ValueError(f"width={width!r} must be > 0")
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:  # rounding down must not lose more than 10%
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's block count by `depth`, rounding up (at least one block)."""
    if depth <= 0:
        raise ValueError(f"depth={depth!r} must be > 0")
    return max(1, math.ceil(repeats * depth - _FLOAT_SLACK))


def scaled_resolution(base_resolution: int, r: float, divisor: int = 1) -> int:
    """Input size for resolution coefficient `r`: base * r rounded to the nearest `divisor`.

    The official B1..B7 sizes (240, 260, 300, ...) are not given by any formula; callers that
    need them pass them explicitly (see models.zoo.EFFICIENTNET_OFFICIAL).
    """
    if r <= 0:
        raise ValueError(f"r={r!r} must be > 0")
    steps = math.floor(base_resolution * r / divisor + 0.5 + _FLOAT_SLACK)
    return max(divisor, steps * divisor)
