"""Bases of your own, known by name once registered: a stage table (models.spec.spec_from_table,
kept in models.bases.BASES) or any PyTorch network given by its builder function (kept here).

A builder is `package.module:function` (importable, e.g. on PYTHONPATH) or `path/to/file.py:function`
(relative to the current folder), called as `function(depth=..., width=..., num_classes=...,
in_channels=...)` and returning an `nn.Module` that maps (B, in_channels, H, W) images to
(B, num_classes) logits at any input side. Depth and width are the multipliers a candidate asks
for; how they round to whole blocks and channels is the builder's business.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from models.bases import BUILT_IN, register

ARGUMENTS = ("depth", "width", "num_classes", "in_channels")


@dataclass(frozen=True)
class Builder:
    target: str  # as written in base.builder
    function: Callable[..., nn.Module]
    resolution: int  # the input side of its family in best.yaml (a builder has no native size)

    def __call__(self, depth: float, width: float, num_classes: int, in_channels: int) -> nn.Module:
        model = self.function(depth=depth, width=width, num_classes=num_classes, in_channels=in_channels)
        if not isinstance(model, nn.Module):
            raise TypeError(f"base.builder={self.target!r} returned {type(model).__name__}, not a torch nn.Module")
        return model


BUILDERS: dict[str, Builder] = {}


def load_function(target: str, where: str = "base.builder") -> Callable:
    """The function `module:function` or `file.py:function` names; one-line ValueErrors."""
    module_name, sep, function_name = target.rpartition(":")
    if not sep or not module_name or not function_name.isidentifier():
        raise ValueError(f"{where}={target!r} must be package.module:function or path/to/file.py:function")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        if not path.is_file():
            raise ValueError(f"{where}={target!r}: no file {path}")
    try:
        if module_name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(f"own_base_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{where}={target!r}: cannot import {module_name} ({e}); is its folder on PYTHONPATH?") from None
    except Exception as e:  # the user's module itself fails: a syntax error, an error at import time
        raise ValueError(f"{where}={target!r}: importing {module_name} raised {type(e).__name__}: "
                         f"{' '.join(str(e).split())}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"{where}={target!r}: {module_name} has no function {function_name}")
    try:
        inspect.signature(function).bind(**dict.fromkeys(ARGUMENTS))
    except TypeError:
        raise ValueError(f"{where}={target!r}: {function_name} must take the keyword arguments "
                         f"{', '.join(ARGUMENTS)}") from None
    return function


def register_builder(name: str, target: str, resolution: int) -> Builder:
    """Make the network `target` builds a base under `name` (the same target again is a no-op)."""
    if name in BUILT_IN:
        raise ValueError(f"base.name={name!r} is a built-in base: give your network another name")
    if name in BUILDERS:
        if BUILDERS[name].target != target:
            raise ValueError(f"base.name={name!r} is already registered with base.builder={BUILDERS[name].target!r}")
        return BUILDERS[name]  # its module runs once per process
    BUILDERS[name] = Builder(target, load_function(target), resolution)
    return BUILDERS[name]


def register_own(name: str, table=None, builder: str | None = None, resolution: int = 224) -> None:
    """Register a config's own base: its stage table or its builder (neither: nothing to do)."""
    if table is not None and builder is not None:
        raise ValueError("base.spec and base.builder are both set: a base is one or the other")
    if table is not None:
        register(name, table)
    elif builder is not None:
        register_builder(name, builder, resolution)
