"""Multiply-adds of a spec's conv and linear layers, from shapes alone (no module is built).

The same number fvcore reports as `flops` (models.complexity.count; a test keeps them equal),
but about a thousand times cheaper: the FLOPs-matching solver of search.plan.series asks for it
hundreds of times per experiment, and a deep network takes seconds to trace.
"""

from __future__ import annotations

from models.kinds import KINDS, conv_macs, conv_out
from models.spec import NetSpec


def conv_linear_macs(spec: NetSpec, resolution: int, num_classes: int = 1000, in_channels: int = 3) -> int:
    """Multiply-adds of all conv and linear layers for one `resolution` x `resolution` image."""
    size, macs = conv_macs(resolution, in_channels, spec.stem_channels, spec.stem_kernel, spec.stem_stride)
    if spec.stem_pool:
        size = conv_out(size, 3, 2)
    ch = spec.stem_channels
    for stage in spec.stages:
        kind = KINDS[stage.block]
        for i in range(stage.repeats):
            size, block_macs = kind.macs(stage, size, ch, stage.stride if i == 0 else 1)
            macs += block_macs
            ch = kind.out_channels(stage.channels)
    if spec.head_channels:
        macs += conv_macs(size, ch, spec.head_channels, 1)[1]
        ch = spec.head_channels
    return macs + ch * num_classes
