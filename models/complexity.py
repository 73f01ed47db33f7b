"""Complexity of a candidate network: params, FLOPs (fvcore), activations — cached.

"flops" are multiply-adds of conv and linear layers (one multiply-add = one flop), the convention
of the EfficientNet paper and of torchvision's published GFLOPs. fvcore's own total, which also
counts batch norm and pooling, and its activation count are kept as separate figures.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import (
    addmm_flop_jit, bmm_flop_jit, conv_flop_jit, einsum_flop_jit, generic_activation_jit, linear_flop_jit,
    matmul_flop_jit,
)

from models import BUILDERS, NetSpec, build_model, make, scaled_spec
from models.macs import conv_linear_macs

# The multiply-add ops of conv / linear layers: traced op -> (fvcore's name for it, flop handle).
MULTIPLY_ADD_HANDLES = {
    "aten::_convolution": ("conv", conv_flop_jit),
    "aten::addmm": ("addmm", addmm_flop_jit),
    "aten::linear": ("linear", linear_flop_jit),
    "aten::matmul": ("matmul", matmul_flop_jit),
    "aten::mm": ("mm", matmul_flop_jit),
    "aten::bmm": ("bmm", bmm_flop_jit),
    "aten::einsum": ("einsum", einsum_flop_jit),
}
_ACTIVATIONS = "activations"  # the extra key under which the same ops count their outputs


@dataclass(frozen=True)
class Complexity:
    params: int
    flops: int  # conv + linear multiply-adds for one image
    fvcore_flops: int  # fvcore's total: also batch norm, pooling, upsampling
    activations: int  # outputs of conv / linear layers for one image


def count(model: torch.nn.Module, resolution: int, in_channels: int = 3) -> Complexity:
    """Count one image in eval mode with a single fvcore trace (flops and activations together)."""
    was_training = model.training
    model.eval()
    image = torch.zeros(1, in_channels, resolution, resolution)
    handles = {op: _with_activations(name, flop) for op, (name, flop) in MULTIPLY_ADD_HANDLES.items()}
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(model, image).set_op_handle(**handles)
            by_op = _quiet(analysis).by_operator()
    finally:
        model.train(was_training)
    activations = by_op.pop(_ACTIVATIONS, 0)
    return Complexity(
        params=sum(p.numel() for p in model.parameters()),
        flops=int(sum(by_op.get(name, 0) for name, _ in MULTIPLY_ADD_HANDLES.values())),
        fvcore_flops=int(sum(by_op.values())),
        activations=int(activations),
    )


def _with_activations(name: str, flop_handle):
    """An fvcore op handle that reports the op's flops and its output activations at once."""
    activation_handle = generic_activation_jit()

    def handle(inputs, outputs):
        flops, activations = flop_handle(inputs, outputs), activation_handle(inputs, outputs)
        return Counter({name: _number(flops), _ACTIVATIONS: _number(activations)})

    return handle


def _number(value):
    return sum(value.values()) if isinstance(value, Counter) else value


def measure(
    base: str,
    depth: float = 1.0,
    width: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    in_channels: int = 3,
    variant: str = "imagenet",
) -> Complexity:
    """Complexity of `base` scaled by (depth, width) at `resolution`."""
    if base in BUILDERS:
        return _measure_built(base, depth, width, resolution, num_classes, in_channels)
    return measure_spec(scaled_spec(base, depth, width, variant), resolution, num_classes, in_channels)


def multiply_adds(base: str, depth: float = 1.0, width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                  in_channels: int = 3, variant: str = "imagenet") -> int:
    """Conv + linear multiply-adds (what `measure(...).flops` counts): from a stage table's shapes alone,
    without a trace; a builder's network has no table, so there fvcore's cached count."""
    if base in BUILDERS:
        return measure(base, depth, width, resolution, num_classes, in_channels).flops
    return conv_linear_macs(scaled_spec(base, depth, width, variant), resolution, num_classes, in_channels)


@functools.lru_cache(maxsize=None)
def _measure_built(base: str, depth: float, width: float, resolution: int, num_classes: int, in_channels: int):
    """A builder's network has no stage table to key on: cached by its arguments (one process, one builder per name)."""
    return count(make(base, depth, width, num_classes=num_classes, in_channels=in_channels), resolution, in_channels)


@functools.lru_cache(maxsize=None)
def measure_spec(spec: NetSpec, resolution: int, num_classes: int = 1000, in_channels: int = 3) -> Complexity:
    """Complexity of one network; cached by its spec, so multipliers that round to the same
    network (as a FLOPs-matching bisection tries many) are traced once."""
    return count(build_model(spec, num_classes, in_channels), resolution, in_channels)


def training_bytes(model: torch.nn.Module, resolution: int, batch: int, in_channels: int = 3,
                   optimizer: str = "sgd") -> int:
    """Memory one training step holds, in bytes: weights, gradients and the optimizer's state
    (SGD's momentum: 3 x the parameters; AdamW's two moments: 4 x), plus every tensor autograd
    saves for the backward pass at `batch` images: what grows with the activations and decides
    whether a network trains on a device. The allocator's transient buffers come on top.
    Measured in fp32 on forward passes of 2 and 4 images (batch norm needs more than one),
    extrapolated linearly to `batch`; a storage saved by several ops counts once."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def saved_bytes(images: int) -> int:
        saved: dict[int, int] = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in weights:
                saved[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(torch.zeros(images, in_channels, resolution, resolution))
        return sum(saved.values())

    was_training = model.training
    model.train()
    try:
        two, four = saved_bytes(2), saved_bytes(4)
    finally:
        model.train(was_training)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    copies = 4 if optimizer == "adamw" else 3
    return copies * params + two + (four - two) * (batch - 2) // 2


def _quiet(analysis):
    return analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
