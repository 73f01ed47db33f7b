"""Multiply-adds of a spec's conv and linear layers, from shapes alone (no module is built).

The same number fvcore reports as `flops` (models.complexity.count; a test keeps them equal),
but about a thousand times cheaper: the FLOPs-matching solver of search.plan.series asks for it
hundreds of times per experiment, and a deep network takes seconds to trace.
"""

from __future__ import annotations

from models.spec import NetSpec


def _out(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv with 'same' padding (kernel // 2), as blocks.ConvBNAct builds it."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _conv(size: int, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> tuple[int, int]:
    """(output side, multiply-adds) of one conv."""
    out = _out(size, kernel, stride)
    return out, out * out * out_ch * (in_ch // groups) * kernel * kernel


def _block(kind, size, in_ch, channels, stride, kernel, expand, se_ratio) -> tuple[int, int, int]:
    """(output side, output channels, multiply-adds) of one block of models.blocks."""
    macs = 0
    if kind == "ds":
        size, m1 = _conv(size, in_ch, in_ch, kernel, stride, groups=in_ch)
        size, m2 = _conv(size, in_ch, channels, 1)
        return size, channels, m1 + m2
    if kind == "mbconv":
        mid = in_ch * expand
        if expand != 1:
            macs += _conv(size, in_ch, mid, 1)[1]
        size, m = _conv(size, mid, mid, kernel, stride, groups=mid)
        macs += m
        if se_ratio > 0:
            macs += 2 * mid * max(1, int(in_ch * se_ratio))  # two 1x1 convs on the pooled 1x1 map
        return size, channels, macs + _conv(size, mid, channels, 1)[1]
    out_ch = 4 * channels if kind == "bottleneck" else channels
    if stride != 1 or in_ch != out_ch:  # projection shortcut
        macs += _conv(size, in_ch, out_ch, 1, stride)[1]
    if kind == "basic":
        size_out, m1 = _conv(size, in_ch, channels, 3, stride)
        return size_out, out_ch, macs + m1 + _conv(size_out, channels, channels, 3)[1]
    m1 = _conv(size, in_ch, channels, 1)[1]
    size_out, m2 = _conv(size, channels, channels, 3, stride)
    return size_out, out_ch, macs + m1 + m2 + _conv(size_out, channels, out_ch, 1)[1]


def conv_linear_macs(spec: NetSpec, resolution: int, num_classes: int = 1000, in_channels: int = 3) -> int:
    """Multiply-adds of all conv and linear layers for one `resolution` x `resolution` image."""
    size, macs = _conv(resolution, in_channels, spec.stem_channels, spec.stem_kernel, spec.stem_stride)
    if spec.stem_pool:
        size = _out(size, 3, 2)
    ch = spec.stem_channels
    for stage in spec.stages:
        for i in range(stage.repeats):
            stride = stage.stride if i == 0 else 1
            size, ch, m = _block(stage.block, size, ch, stage.channels, stride, stage.kernel, stage.expand, stage.se_ratio)
            macs += m
    if spec.head_channels:
        macs += _conv(size, ch, spec.head_channels, 1)[1]
        ch = spec.head_channels
    return macs + ch * num_classes
