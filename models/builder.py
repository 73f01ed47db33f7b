"""Turn any NetSpec into a torch module: one builder for every base and every scaling."""

from __future__ import annotations

from torch import nn

from models import blocks
from models.kinds import KINDS
from models.spec import NetSpec


class ScalableNet(nn.Module):
    """stem -> blocks -> optional 1x1 head -> global average pool -> dropout -> linear."""

    def __init__(self, spec: NetSpec, num_classes: int, in_channels: int):
        super().__init__()
        self.spec = spec
        act = spec.activation
        stem = [blocks.ConvBNAct(in_channels, spec.stem_channels, spec.stem_kernel, spec.stem_stride, act=act)]
        if spec.stem_pool:
            stem.append(nn.MaxPool2d(3, 2, padding=1))
        self.stem = nn.Sequential(*stem)

        layers, in_ch, index = [], spec.stem_channels, 0
        for stage in spec.stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                drop_path = spec.drop_path_rate * index / max(1, spec.num_blocks - 1)
                kind = KINDS[stage.block]
                layers.append(kind.build(stage, in_ch, stride, act, drop_path))
                in_ch = kind.out_channels(stage.channels)
                index += 1
        self.blocks = nn.Sequential(*layers)

        self.head = blocks.ConvBNAct(in_ch, spec.head_channels, 1, act=act) if spec.head_channels else nn.Identity()
        self.num_features = spec.head_channels or in_ch
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(self.num_features, num_classes)
        blocks.init_weights(self)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(self.dropout(self.pool(x).flatten(1)))


def build_model(spec: NetSpec, num_classes: int = 1000, in_channels: int = 3) -> ScalableNet:
    """Build the network a spec describes, for `num_classes` outputs and `in_channels` inputs."""
    if num_classes < 1 or in_channels < 1:
        raise ValueError(f"num_classes={num_classes} and in_channels={in_channels} must both be >= 1")
    return ScalableNet(spec, num_classes, in_channels)
