"""The layers every block kind is made of (the kinds themselves: models/kinds.py), and the init."""

from __future__ import annotations

import torch
from torch import nn


class _ReLU6InPlace(torch.autograd.Function):
    """ReLU6 in place that saves its output for the backward pass.

    Autograd's own `hardtanh_` keeps a copy of its input for the gradient: one more pass over
    and one more saved tensor of every expanded activation. The output says the same thing
    (0 < y < 6 exactly where 0 < x < 6), and it is already saved by the next conv.
    """

    @staticmethod
    def forward(ctx, x):
        x.clamp_(0.0, 6.0)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.hardtanh_backward(grad, y, 0.0, 6.0)


class ReLU6(nn.Module):
    """min(max(x, 0), 6) in place. Against nn.ReLU6(inplace=True), MobileNetV2 (0.5 width, 45 px,
    batch 128) saves 0.60 instead of 0.87 GiB of activations for backward and trains 2-3% faster."""

    def forward(self, x):
        if torch.is_grad_enabled() and x.requires_grad:
            return _ReLU6InPlace.apply(x)
        return x.clamp_(0.0, 6.0)  # nothing to save: tracing (FLOP counting) sees a plain op


# ReLU's in-place gradient reads its output: nothing is copied. SiLU's reads its input, which
# autograd would first copy for an in-place SiLU: out of place saves the same tensors, one pass less.
_ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "relu6": ReLU6, "silu": nn.SiLU}


def activation(name: str) -> nn.Module:
    return _ACTIVATIONS[name]()


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> batch norm -> optional activation, 'same' padding for odd kernels."""

    def __init__(self, in_ch, out_ch, kernel=3, stride=1, groups=1, act: str | None = "relu"):
        layers = [
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act:
            layers.append(activation(act))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel gating: global pool -> reduce -> act -> expand -> sigmoid -> scale."""

    def __init__(self, channels: int, reduced: int, act: str):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = activation(act)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        gate = self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * gate.sigmoid()


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of whole samples while training."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x):
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Residual(nn.Module):
    """`act(shortcut(x) + drop_path(branch(x)))`: the skeleton shared by all residual blocks."""

    def __init__(self, branch: nn.Module, shortcut: nn.Module | None, drop_path: float, act: str | None):
        super().__init__()
        self.branch = branch
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.drop_path = DropPath(drop_path)
        self.act = activation(act) if act else nn.Identity()

    def forward(self, x):
        return self.act(self.shortcut(x) + self.drop_path(self.branch(x)))


def init_weights(module: nn.Module) -> None:
    """He-normal convs, unit batch norms, small linear weights (pycls / torchvision defaults)."""
    if any(p.is_meta for p in module.parameters()):
        return  # shapes only (FLOPs counting on the meta device): nothing to initialise
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            # PyTorch's fan-out ignores groups, so depthwise kernels start sqrt(channels) smaller than the
            # TF/timm EfficientNet init. Kept on purpose: with the group-aware init, the proxy's SGD recipe
            # reached 0.37 instead of 0.61 after 16 epochs (docs/evidence/proxy-probes-2026-11-23.md).
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    # Zero-init each residual branch's last batch norm so every block starts as the identity:
    # short proxy trainings are markedly more stable that way.
    for m in module.modules():
        if isinstance(m, Residual):
            last_bn = [bn for bn in m.branch.modules() if isinstance(bn, nn.BatchNorm2d)][-1]
            nn.init.zeros_(last_bn.weight)

