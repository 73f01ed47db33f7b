"""Files in runs/<name>/: tables and YAML written atomically, and the run's log file."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: not every system can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomic(path: Path, write: Callable[[str], None]) -> Path:
    """Have `write(tmp)` write a temporary file beside `path`, flush it to disk, then rename it over
    `path`: a crash or power cut leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data on disk before the rename makes it visible
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write `text` via a temporary file and a rename (replace_atomic), so a crash never leaves half a file."""
    replace_atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_csv(path: Path, table: pd.DataFrame) -> None:
    write_atomic(path, table.to_csv(index=False))


def write_yaml(path: Path, data: dict) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def log_to(path: Path) -> None:
    """Append this process's log records, Optuna's among them, to the run's log file (once per path)."""
    import optuna

    optuna.logging.disable_default_handler()  # its records go to the handlers of the root logger instead:
    optuna.logging.enable_propagation()  # the terminal in the project's format, and search.log
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
