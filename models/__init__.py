"""Scalable base networks (stage tables), the compound-scaling rules, and one builder.

    from models import create
    net, spec = create("mobilenetv2", depth=1.2, width=1.1, num_classes=10, variant="small")
"""

from __future__ import annotations

from models.bases import BASES, get_base
from models.builder import ScalableNet, build_model
from models.own import BUILDERS
from models.scaling import round_filters, round_repeats, scaled_resolution
from models.spec import VARIANTS, NetSpec, Stage, for_variant, scale


def scaled_spec(base: str, depth: float = 1.0, width: float = 1.0, variant: str = "imagenet") -> NetSpec:
    """The spec of `base` scaled by depth and width, adapted to the input regime `variant`."""
    return for_variant(scale(get_base(base), depth, width), variant)


def make(base: str, depth: float = 1.0, width: float = 1.0, variant: str = "imagenet", num_classes: int = 1000,
         in_channels: int = 3):
    """The network `base` scaled by depth and width: from its stage table, or from its builder
    (models/own.py; a builder's network defines its own stem, so `variant` does not apply)."""
    if base in BUILDERS:
        return BUILDERS[base](depth, width, num_classes, in_channels)
    return build_model(scaled_spec(base, depth, width, variant), num_classes, in_channels)


def native_resolution(base: str) -> int:
    """The input side a base is published at (a builder's: the one it was registered with)."""
    return BUILDERS[base].resolution if base in BUILDERS else get_base(base).resolution


def create(base: str, depth=1.0, width=1.0, num_classes=1000, in_channels=3, variant="imagenet"):
    """Build a scaled base network; returns (module, spec)."""
    spec = scaled_spec(base, depth, width, variant)
    return build_model(spec, num_classes, in_channels), spec


__all__ = [
    "BASES", "BUILDERS", "VARIANTS", "NetSpec", "ScalableNet", "Stage", "build_model", "create", "for_variant",
    "get_base", "make", "native_resolution", "round_filters", "round_repeats", "scale", "scaled_resolution", "scaled_spec",
]
