"""Block kinds: each kind's module, output channels and multiply-adds, defined side by side.

A stage table names its blocks by kind (`Stage.block`). The table's schema (models.spec), the
builder (models.builder) and the shape-only multiply-add count (models.macs) all look kinds up in
KINDS, so a new kind is one class here, made of the layers of models.blocks. Its `macs` must agree
with fvcore's count of what `build` returns: tests/test_complexity.py checks every kind.
"""

from __future__ import annotations

from torch import nn

from models.blocks import ConvBNAct, Residual, SqueezeExcite


def conv_out(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv with 'same' padding (kernel // 2), as ConvBNAct builds it."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def conv_macs(size: int, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> tuple[int, int]:
    """(output side, multiply-adds) of one conv on a `size` x `size` input."""
    out = conv_out(size, kernel, stride)
    return out, out * out * out_ch * (in_ch // groups) * kernel * kernel


class BlockKind:
    """One block of a stage, given its stage (channels, kernel, expand, se_ratio), its input channels
    and its stride (the stage's for the first block, 1 for the others)."""

    def out_channels(self, channels: int) -> int:
        return channels

    def build(self, stage, in_ch: int, stride: int, act: str, drop_path: float) -> nn.Module:
        raise NotImplementedError

    def macs(self, stage, size: int, in_ch: int, stride: int) -> tuple[int, int]:
        """(output side, multiply-adds) of the block on a `size` x `size` input."""
        raise NotImplementedError


class DepthwiseSeparable(BlockKind):
    """MobileNetV1: depthwise conv -> pointwise conv, both with BN and activation."""

    def build(self, stage, in_ch, stride, act, drop_path):
        return nn.Sequential(
            ConvBNAct(in_ch, in_ch, stage.kernel, stride, groups=in_ch, act=act),
            ConvBNAct(in_ch, stage.channels, 1, act=act),
        )

    def macs(self, stage, size, in_ch, stride):
        size, depthwise = conv_macs(size, in_ch, in_ch, stage.kernel, stride, groups=in_ch)
        return size, depthwise + conv_macs(size, in_ch, stage.channels, 1)[1]


class MBConv(BlockKind):
    """Inverted residual (MobileNetV2 / EfficientNet): expand -> depthwise -> SE -> project."""

    @staticmethod
    def _widths(stage, in_ch) -> tuple[int, int]:
        """(expanded channels, squeeze-excitation channels; 0: none)"""
        se = max(1, int(in_ch * stage.se_ratio)) if stage.se_ratio > 0 else 0
        return in_ch * stage.expand, se

    def build(self, stage, in_ch, stride, act, drop_path):
        mid, se = self._widths(stage, in_ch)
        layers = [ConvBNAct(in_ch, mid, 1, act=act)] if stage.expand != 1 else []
        layers.append(ConvBNAct(mid, mid, stage.kernel, stride, groups=mid, act=act))
        if se:
            layers.append(SqueezeExcite(mid, se, act))
        layers.append(ConvBNAct(mid, stage.channels, 1, act=None))
        branch = nn.Sequential(*layers)
        if stride == 1 and in_ch == stage.channels:
            return Residual(branch, None, drop_path, act=None)
        return branch

    def macs(self, stage, size, in_ch, stride):
        mid, se = self._widths(stage, in_ch)
        expand = conv_macs(size, in_ch, mid, 1)[1] if stage.expand != 1 else 0
        size, depthwise = conv_macs(size, mid, mid, stage.kernel, stride, groups=mid)
        squeeze = 2 * mid * se  # two 1x1 convs on the pooled 1x1 map
        return size, expand + depthwise + squeeze + conv_macs(size, mid, stage.channels, 1)[1]


def _projection(in_ch: int, out_ch: int, stride: int) -> ConvBNAct | None:
    """The shortcut of a residual block whose shape changes; None where the input passes as is."""
    return None if stride == 1 and in_ch == out_ch else ConvBNAct(in_ch, out_ch, 1, stride, act=None)


def _projection_macs(size: int, in_ch: int, out_ch: int, stride: int) -> int:
    return 0 if stride == 1 and in_ch == out_ch else conv_macs(size, in_ch, out_ch, 1, stride)[1]


class Basic(BlockKind):
    """ResNet basic block: two 3x3 convs; `channels` out."""

    def build(self, stage, in_ch, stride, act, drop_path):
        width = stage.channels
        branch = nn.Sequential(ConvBNAct(in_ch, width, 3, stride, act=act), ConvBNAct(width, width, 3, act=None))
        return Residual(branch, _projection(in_ch, width, stride), drop_path, act)

    def macs(self, stage, size, in_ch, stride):
        width = stage.channels
        out, first = conv_macs(size, in_ch, width, 3, stride)
        return out, _projection_macs(size, in_ch, width, stride) + first + conv_macs(out, width, width, 3)[1]


class Bottleneck(BlockKind):
    """ResNet bottleneck: 1x1 -> 3x3 (with the stride) -> 1x1; `channels` is the inner width, 4x it out."""

    def out_channels(self, channels):
        return 4 * channels

    def build(self, stage, in_ch, stride, act, drop_path):
        width, out_ch = stage.channels, self.out_channels(stage.channels)
        branch = nn.Sequential(
            ConvBNAct(in_ch, width, 1, act=act),
            ConvBNAct(width, width, 3, stride, act=act),
            ConvBNAct(width, out_ch, 1, act=None),
        )
        return Residual(branch, _projection(in_ch, out_ch, stride), drop_path, act)

    def macs(self, stage, size, in_ch, stride):
        width, out_ch = stage.channels, self.out_channels(stage.channels)
        reduce = conv_macs(size, in_ch, width, 1)[1]
        out, middle = conv_macs(size, width, width, 3, stride)
        expand = conv_macs(out, width, out_ch, 1)[1]
        return out, _projection_macs(size, in_ch, out_ch, stride) + reduce + middle + expand


KINDS: dict[str, BlockKind] = {
    "ds": DepthwiseSeparable(),
    "mbconv": MBConv(),
    "basic": Basic(),
    "bottleneck": Bottleneck(),
}
