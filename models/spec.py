"""Architectures as data: a network is a stem, a table of stages and a head.

Scaling never edits module code: `scale` returns a new spec with rounded channels and repeats,
and `models.builder.build_model` turns any spec into modules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from models.kinds import KINDS
from models.scaling import round_filters, round_repeats

ACTIVATIONS = ("relu", "relu6", "silu")
VARIANTS = ("imagenet", "small")


@dataclass(frozen=True)
class Stage:
    """A run of `repeats` identical blocks; only the first one changes stride and channels."""

    block: str  # a key of models.kinds.KINDS: ds (MobileNetV1), mbconv (MobileNetV2/EfficientNet), basic, bottleneck
    channels: int  # output channels (bottleneck: inner width; its output is 4x this)
    repeats: int
    stride: int  # stride of the first block of the stage
    kernel: int = 3  # depthwise kernel size (ds, mbconv)
    expand: int = 1  # mbconv expansion ratio
    se_ratio: float = 0.0  # squeeze-excitation width as a fraction of the block's input channels

    def __post_init__(self):
        if self.block not in KINDS:
            raise ValueError(f"block={self.block!r} is not one of: {', '.join(KINDS)}")


@dataclass(frozen=True)
class NetSpec:
    """A whole network; channel counts are final (already scaled and rounded)."""

    name: str
    stages: tuple[Stage, ...]
    stem_channels: int
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_pool: bool = False  # 3x3 stride-2 max-pool after the stem (ResNets)
    head_channels: int = 0  # 1x1 conv before pooling; 0 means none
    activation: str = "relu"  # one of ACTIVATIONS
    dropout: float = 0.0  # before the classifier
    drop_path_rate: float = 0.0  # stochastic depth of the last block, linear in block index
    resolution: int = 224  # native input size of this spec at r = 1

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is not one of: {', '.join(ACTIVATIONS)}")

    @property
    def num_blocks(self) -> int:
        return sum(stage.repeats for stage in self.stages)

    @property
    def total_stride(self) -> int:
        stride = self.stem_stride * (2 if self.stem_pool else 1)
        for stage in self.stages:
            stride *= stage.stride
        return stride


def scale(spec: NetSpec, depth: float = 1.0, width: float = 1.0) -> NetSpec:
    """Scale a spec's repeats by `depth` and all its channel counts by `width` (official rounding)."""
    stages = tuple(
        dataclasses.replace(s, channels=round_filters(s.channels, width), repeats=round_repeats(s.repeats, depth))
        for s in spec.stages
    )
    head = round_filters(spec.head_channels, width) if spec.head_channels else 0
    return dataclasses.replace(
        spec, stages=stages, stem_channels=round_filters(spec.stem_channels, width), head_channels=head
    )


def for_variant(spec: NetSpec, variant: str) -> NetSpec:
    """Adapt a spec to its input regime.

    `imagenet` keeps the spec as published (total stride 32, for inputs of ~128 px and more).
    `small` (28-64 px: MNIST, CIFAR, the synthetic default) removes the stem's downsampling:
    stem stride 1 with a kernel of at most 3, so the total stride is 16 (a ResNet keeps its
    max-pool); the last feature map of a 32 px input is then 2x2 instead of 1x1.
    """
    if variant == "imagenet":
        return spec
    if variant == "small":
        return dataclasses.replace(spec, stem_stride=1, stem_kernel=min(spec.stem_kernel, 3))
    raise ValueError(f"variant={variant!r} is not one of: {', '.join(VARIANTS)}")


STRIDES = (1, 2)


def spec_from_table(name: str, table: Mapping[str, Any], where: str = "base.spec") -> NetSpec:
    """A NetSpec from a stage table written as data (YAML): NetSpec's fields, `stages` a list of
    Stage fields. Every problem is a one-line ValueError naming its place, e.g.
    `base.spec.stages[2].repeats=0 must be >= 1`."""
    if not isinstance(table, Mapping):
        raise ValueError(f"{where} must be a mapping of NetSpec fields, not {type(table).__name__}")
    fields = {f.name for f in dataclasses.fields(NetSpec)} - {"name"}
    _known_keys(table, fields, where)
    stages = table.get("stages")
    if not isinstance(stages, (list, tuple)) or not stages:
        raise ValueError(f"{where}.stages must be a non-empty list of stages")
    stage_fields = {f.name for f in dataclasses.fields(Stage)}
    parsed = []
    for i, stage in enumerate(stages):
        at = f"{where}.stages[{i}]"
        if not isinstance(stage, Mapping):
            raise ValueError(f"{at} must be a mapping of {', '.join(sorted(stage_fields))}")
        _known_keys(stage, stage_fields, at)
        missing = [k for k in ("block", "channels", "repeats", "stride") if k not in stage]
        if missing:
            raise ValueError(f"{at} lacks {', '.join(missing)}")
        if stage["block"] not in KINDS:
            raise ValueError(f"{at}.block={stage['block']!r} is not one of: {', '.join(KINDS)}")
        parsed.append(Stage(**dict(stage)))
    if "stem_channels" not in table:
        raise ValueError(f"{where} lacks stem_channels")
    if table.get("activation", "relu") not in ACTIVATIONS:
        raise ValueError(f"{where}.activation={table['activation']!r} is not one of: {', '.join(ACTIVATIONS)}")
    spec = NetSpec(name=name, **{**dict(table), "stages": tuple(parsed)})
    check_spec(spec, where)
    return spec


def check_spec(spec: NetSpec, where: str = "base.spec") -> None:
    """Values a network cannot be built from; a ValueError names the first (built-in bases pass too)."""
    def need(ok: bool, key: str, value, valid: str) -> None:
        if not ok:
            raise ValueError(f"{where}.{key}={value!r} {valid}")

    def integer(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    for key in ("stem_channels", "stem_kernel", "stem_stride", "resolution"):
        value = getattr(spec, key)
        need(integer(value) and value >= 1, key, value, "must be a whole number >= 1")
    need(integer(spec.head_channels) and spec.head_channels >= 0, "head_channels", spec.head_channels,
         "must be a whole number >= 0 (0: no head conv)")
    for key in ("dropout", "drop_path_rate"):
        value = getattr(spec, key)
        need(isinstance(value, (int, float)) and 0 <= value < 1, key, value, "must be in [0, 1)")
    for i, stage in enumerate(spec.stages):
        at = f"stages[{i}]"
        for key in ("channels", "repeats", "kernel", "expand"):
            value = getattr(stage, key)
            need(integer(value) and value >= 1, f"{at}.{key}", value, "must be a whole number >= 1")
        need(stage.stride in STRIDES, f"{at}.stride", stage.stride, f"must be one of: {', '.join(map(str, STRIDES))}")
        need(stage.kernel % 2 == 1, f"{at}.kernel", stage.kernel, "must be odd (same padding)")
        need(isinstance(stage.se_ratio, (int, float)) and 0 <= stage.se_ratio < 1, f"{at}.se_ratio",
             stage.se_ratio, "must be in [0, 1)")
    need(spec.total_stride <= spec.resolution, "resolution", spec.resolution,
         f"is smaller than the total stride {spec.total_stride}: the last feature map would be empty")


def _known_keys(table: Mapping, valid: set, where: str) -> None:
    unknown = [k for k in table if k not in valid]
    if unknown:
        raise ValueError(f"{where}.{unknown[0]} is not a field: expected one of {', '.join(sorted(valid))}")
