"""The base networks as stage tables (published ImageNet configurations, width = depth = 1)."""

from __future__ import annotations

from models.spec import NetSpec, Stage, spec_from_table


def _mbconv(channels, repeats, stride, kernel, expand, se_ratio=0.0):
    return Stage("mbconv", channels, repeats, stride, kernel=kernel, expand=expand, se_ratio=se_ratio)


# Tan & Le 2019, Table 1. SE at 0.25 of each block's input channels; SiLU; survival 0.8.
EFFICIENTNET_B0 = NetSpec(
    name="efficientnet_b0",
    stem_channels=32,
    stages=(
        _mbconv(16, 1, 1, 3, 1, 0.25),
        _mbconv(24, 2, 2, 3, 6, 0.25),
        _mbconv(40, 2, 2, 5, 6, 0.25),
        _mbconv(80, 3, 2, 3, 6, 0.25),
        _mbconv(112, 3, 1, 5, 6, 0.25),
        _mbconv(192, 4, 2, 5, 6, 0.25),
        _mbconv(320, 1, 1, 3, 6, 0.25),
    ),
    head_channels=1280,
    activation="silu",
    dropout=0.2,
    drop_path_rate=0.2,
)

# Sandler et al. 2018, Table 2 (t, c, n, s); ReLU6.
MOBILENETV2 = NetSpec(
    name="mobilenetv2",
    stem_channels=32,
    stages=(
        _mbconv(16, 1, 1, 3, 1),
        _mbconv(24, 2, 2, 3, 6),
        _mbconv(32, 3, 2, 3, 6),
        _mbconv(64, 4, 2, 3, 6),
        _mbconv(96, 3, 1, 3, 6),
        _mbconv(160, 3, 2, 3, 6),
        _mbconv(320, 1, 1, 3, 6),
    ),
    head_channels=1280,
    activation="relu6",
    dropout=0.2,
)

# Howard et al. 2017, Table 1: 13 depthwise-separable blocks grouped into stages by width.
MOBILENETV1 = NetSpec(
    name="mobilenetv1",
    stem_channels=32,
    stages=(
        Stage("ds", 64, 1, 1),
        Stage("ds", 128, 2, 2),
        Stage("ds", 256, 2, 2),
        Stage("ds", 512, 6, 2),
        Stage("ds", 1024, 2, 2),
    ),
)

# He et al. 2016 with the stride on the 3x3 conv (torchvision's "v1.5").
_RESNET_STEM = dict(stem_channels=64, stem_kernel=7, stem_stride=2, stem_pool=True)

RESNET18 = NetSpec(
    name="resnet18",
    stages=tuple(Stage("basic", c, 2, s) for c, s in ((64, 1), (128, 2), (256, 2), (512, 2))),
    **_RESNET_STEM,
)

RESNET50 = NetSpec(
    name="resnet50",
    stages=tuple(Stage("bottleneck", c, n, s) for c, n, s in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))),
    **_RESNET_STEM,
)

BASES: dict[str, NetSpec] = {
    spec.name: spec for spec in (MOBILENETV1, MOBILENETV2, RESNET18, RESNET50, EFFICIENTNET_B0)
}


BUILT_IN = frozenset(BASES)


def register(name: str, table, where: str = "base.spec") -> NetSpec:
    """Make a stage table written as data (models.spec.spec_from_table) a base under `name`, so every
    lookup by name (candidates, workers, analysis) finds it. The same table again is a no-op; a
    built-in name, or a name already registered with another table, is a ValueError."""
    spec = spec_from_table(name, table, where)
    if name in BUILT_IN:
        raise ValueError(f"base.name={name!r} is a built-in base: give your stage table another name")
    if BASES.get(name, spec) != spec:
        raise ValueError(f"base.name={name!r} is already registered with another stage table")
    BASES[name] = spec
    return spec


def get_base(name: str) -> NetSpec:
    """Look a base network up by name, with an error that lists the valid names."""
    try:
        return BASES[name]
    except KeyError:
        raise ValueError(f"base={name!r} is not one of: {', '.join(BASES)}") from None
