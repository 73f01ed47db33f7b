"""Ctrl-C that is never lost during a search.

Python drops a KeyboardInterrupt raised inside a weakref callback or a finalizer ("Exception
ignored in ..."), and a signal can land in one at any moment (a freed model runs several).
`kept_ctrl_c()` remembers every Ctrl-C, and `raise_if_ctrl_c()`, called after each training
step and between trials, raises it again at a point where it cannot be swallowed.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_PRESSED = threading.Event()


def _on_sigint(signum, frame):
    _PRESSED.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def kept_ctrl_c():
    """Within this block a Ctrl-C is remembered (main thread only: signals are delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _PRESSED.clear()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _PRESSED.clear()


def raise_if_ctrl_c() -> None:
    if _PRESSED.is_set():
        raise KeyboardInterrupt
