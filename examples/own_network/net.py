"""A network of your own, outside the package: a plain VGG-style CNN that compound scaling can grow.

The search calls `build(depth=..., width=..., num_classes=..., in_channels=...)` for every candidate.
Depth multiplies the conv layers of each stage (rounded up), width multiplies the channels (rounded
to a multiple of 8); the input side is whatever the candidate's resolution is.
"""

import math

from torch import nn

STAGES = ((32, 1), (64, 2), (128, 2))  # (channels, conv layers) at width = depth = 1; each stage halves the side


def _channels(c: int, width: float) -> int:
    return max(8, int(round(c * width / 8)) * 8)


def build(depth: float, width: float, num_classes: int, in_channels: int) -> nn.Module:
    layers, c_in = [], in_channels
    for i, (channels, repeats) in enumerate(STAGES):
        c_out = _channels(channels, width)
        for _ in range(math.ceil(repeats * depth)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        if i < len(STAGES) - 1:
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
