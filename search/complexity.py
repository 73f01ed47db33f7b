"""Complexity of a candidate network: params, FLOPs (fvcore), activations — cached.

"flops" are multiply-adds of conv and linear layers (one multiply-add = one flop), the convention
of the EfficientNet paper and of torchvision's published GFLOPs. fvcore's own total, which also
counts batch norm and pooling, and its activation count are kept as separate figures.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import torch
from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

from models import create

# fvcore operator names that are multiply-adds of conv / linear layers.
MULTIPLY_ADD_OPS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


@dataclass(frozen=True)
class Complexity:
    params: int
    flops: int  # conv + linear multiply-adds for one image
    fvcore_flops: int  # fvcore's total: also batch norm, pooling, upsampling
    activations: int  # outputs of conv / linear layers for one image

    def as_dict(self) -> dict:
        return asdict(self)


def count(model: torch.nn.Module, resolution: int, in_channels: int = 3) -> Complexity:
    """Trace `model` once per counter on a single image (eval mode, no grad) and count."""
    was_training = model.training
    model.eval()
    image = torch.zeros(1, in_channels, resolution, resolution)
    try:
        with torch.no_grad():
            flops = _quiet(FlopCountAnalysis(model, image))
            by_op = flops.by_operator()
            activations = _quiet(ActivationCountAnalysis(model, image)).total()
            fvcore_total = flops.total()
    finally:
        model.train(was_training)
    return Complexity(
        params=sum(p.numel() for p in model.parameters()),
        flops=int(sum(by_op.get(op, 0) for op in MULTIPLY_ADD_OPS)),
        fvcore_flops=int(fvcore_total),
        activations=int(activations),
    )


@functools.lru_cache(maxsize=None)
def measure(
    base: str,
    depth: float = 1.0,
    width: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    variant: str = "imagenet",
) -> Complexity:
    """Complexity of `base` scaled by (depth, width) at `resolution`; each key is traced once."""
    model, _ = create(base, depth, width, num_classes, in_channels, variant)
    return count(model, resolution, in_channels)


def _quiet(analysis):
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
