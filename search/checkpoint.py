"""Per-epoch training state, so that an interrupted proxy training resumes where it stopped.

After each epoch, `train` saves the model, optimizer, learning-rate schedule, gradient scaler,
random generators and the accuracies so far to one file per (study, candidate, seed, epochs) in
runs/<name>/checkpoints/. An interrupted trial (Ctrl-C, a crash, a process declared stale) is
queued again as a new trial, whose training finds the file and goes on after the last finished
epoch; on a CPU it ends with the same weights and accuracies as a training never interrupted.
A trial's files are removed once the study has its outcome. A worker on another machine has its
own run folder, and trains a candidate it takes over from the start.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

import torch

log = logging.getLogger("search")

FOLDER = "checkpoints"
RESTORED = ("accuracies", "losses", "images_seen", "train_seconds", "eval_seconds")  # TrainResult fields


class Checkpoint:
    """The training state file of one (study, candidate, seed, epochs)."""

    def __init__(self, run_dir: Path, study: str, key: str, seed: int, epochs: int):
        name = hashlib.sha256(f"{study}\n{key}\n{seed}\n{epochs}".encode()).hexdigest()[:24]
        self.path = Path(run_dir) / FOLDER / f"{name}.pt"

    def save(self, parts: dict, generator: torch.Generator, result) -> None:
        """Write the state of `parts` (name -> object with state_dict), the generators and `result`."""
        state = {name: part.state_dict() for name, part in parts.items()}
        state["result"] = {name: getattr(result, name) for name in RESTORED}
        state["generator"] = generator.get_state()
        state["cpu_rng"] = torch.get_rng_state()  # dropout and stochastic depth draw from the global generators
        if generator.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(generator.device)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(state, partial)
        os.replace(partial, self.path)  # atomic: a kill during the save leaves the last epoch's file whole

    def restore(self, parts: dict, generator: torch.Generator, result) -> int:
        """Load the saved state into `parts`, the generators and `result`; returns the epochs it
        holds (0 when there is no file, or an unreadable one, which is removed)."""
        if not self.path.exists():
            return 0
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file: start afresh rather than fail the trial
            log.warning("unreadable checkpoint %s removed, training from the first epoch (%s)", self.path, e)
            self.remove()
            return 0
        try:
            for name, part in parts.items():
                part.load_state_dict(state[name])
        except Exception:  # parts may be half loaded: fail this attempt; its retry starts afresh
            self.remove()
            raise
        for name in RESTORED:
            setattr(result, name, state["result"][name])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["cpu_rng"])
        if "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], generator.device)
        return len(result.accuracies)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def remove_empty_folder(run_dir: Path) -> None:
    """Remove runs/<name>/checkpoints/ once every trial has its outcome and left no file in it.
    Called after the local workers have ended, so none of them is about to write there."""
    with contextlib.suppress(OSError):  # not empty (an unfinished trial's state), or absent
        (Path(run_dir) / FOLDER).rmdir()
