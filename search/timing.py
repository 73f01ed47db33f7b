"""Phase timers: a documented hook through which bench/ (or anyone) sees where a search spends its time.

    from search import timing
    timing.add_listener(lambda phase, seconds: ...)

Phases: `data_loading` (reading or rendering the data set), `data_preparation` (normalisation
statistics and resizing to a candidate's resolution), `complexity` (planning: measuring every
candidate), `train_call` (one proxy training, evaluation included) and, inside it, `evaluation`
(precise-BN recalibration and validation). With no listener a phase costs one list check.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

Listener = Callable[[str, float], None]
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Call `listener(phase, seconds)` whenever a phase ends (also when it ends by an exception)."""
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    _listeners.remove(listener)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase `name` for every listener."""
    if not _listeners:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        for listener in list(_listeners):
            listener(name, seconds)
