"""The checks of a composed config that Hydra's types cannot express: `validate(cfg)` raises ConfigError,
whose one-line message names the value and what would be valid, before anything is written.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Mapping, Optional

from omegaconf import OmegaConf

from models import BASES, BUILDERS, VARIANTS
from models.own import register_own
from search.config import (
    DEVICES, OPTIMIZERS, PRECISIONS, PRUNERS, ROLES, SCHEDULES, SPACES, STORAGES, ConfigError,
)
from search.storage import STUDY_FILES


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]*$")


def _choice(key: str, value, valid) -> None:
    if value not in valid:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(map(str, valid))}")


def _positive(key: str, value) -> None:
    if value is None or not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"{key}={value!r} must be > 0")


def _synthetic_train_images(cfg) -> Optional[int]:
    """Training images of one epoch where they are known before loading (synthetic data), else None."""
    d = cfg.data
    if d.name != "synthetic" or not 0 < d.val_fraction < 1 or d.synthetic_size <= 0:
        return None  # real files: known only once read (a later issue); bad values: the data checks say
    n = d.synthetic_size if d.use_test_set else d.synthetic_size - round(d.synthetic_size * d.val_fraction)
    for cap in (d.num_train, cfg.train.max_images):
        if cap is not None and cap > 0:
            n = min(n, cap)
    return n


def _check_run_folder(cfg) -> None:
    """The run folder can be created and written, and an existing SQLite study file is a database."""
    run_dir = Path(str(cfg.runs_dir)) / str(cfg.name)
    folder = run_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"run folder {run_dir} cannot be created: {folder} is not a folder (check runs_dir= and name=)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"run folder {run_dir} cannot be written: {folder} is read-only (check runs_dir= and name=)")
    _check_study_kind(cfg, run_dir)
    if cfg.storage.kind != "sqlite":
        return
    db = Path(str(cfg.storage.path or run_dir / STUDY_FILES["sqlite"]))
    if not db.is_file():
        return
    try:  # read-only: neither creates nor changes anything
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as con:
            con.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as e:
        where = f"{cfg.runs_dir}/{cfg.name}/study.db" if cfg.storage.path is None else f"storage.path={db}"
        raise ConfigError(f"{where} is not an SQLite database ({e}): move it away or choose another name=") from None


def _check_study_kind(cfg, run_dir: Path) -> None:
    """A run folder whose study was written with the other file storage is resumed with that one,
    never started afresh beside it (the default was sqlite before it was journal)."""
    if cfg.storage.path is not None or cfg.storage.kind not in STUDY_FILES or (run_dir / STUDY_FILES[cfg.storage.kind]).exists():
        return
    for kind, name in STUDY_FILES.items():
        if (run_dir / name).exists():
            raise ConfigError(f"{cfg.runs_dir}/{cfg.name}/{name} holds this run's study, written with storage={kind}: "
                              f"add storage={kind} to resume it, or choose another name=")


def use_own_bases(cfg) -> None:
    """Register each `spec` or `builder` base (models/own.py) under its name: the run's, and series bases
    composed whole (`- /base@series.<name>.base: <option>`); `cfg` is a config or a config.yaml dict."""
    for base in [cfg.get("base"), *(s.get("base") for s in (cfg.get("series") or {}).values())]:
        if isinstance(base, Mapping):
            table = OmegaConf.to_container(base["spec"]) if OmegaConf.is_config(base.get("spec")) else base.get("spec")
            try:
                register_own(base.get("name"), table, base.get("builder"), base.get("resolution", 224))
            except ValueError as e:
                raise ConfigError(str(e)) from None


def validate(cfg) -> None:
    """Check what the types allow but the search cannot use; raise ConfigError on the first problem."""
    if not _RUN_NAME.match(str(cfg.name)) or ".." in str(cfg.name):
        raise ConfigError(
            f"name={cfg.name!r} must be a plain folder name (letters, digits, . _ = , + -) inside {cfg.runs_dir}/"
        )
    use_own_bases(cfg)
    _choice("base.name", cfg.base.name, [*BASES, *BUILDERS])
    _choice("base.variant", cfg.base.variant, VARIANTS)
    for key in ("resolution", "depth", "width", "resolution_divisor"):
        _positive(f"base.{key}", getattr(cfg.base, key))
    min_size = 8 if cfg.base.variant == "small" else 32
    if cfg.base.resolution < min_size:
        raise ConfigError(f"base.resolution={cfg.base.resolution} is too small for base.variant={cfg.base.variant}: "
                          f"use >= {min_size}")

    s = cfg.search
    for axis in ("alpha", "beta", "gamma"):
        r = getattr(s, axis)
        if r.min < 1:
            raise ConfigError(f"search.{axis}.min={r.min} must be >= 1 (candidates scale the base up)")
        if r.min > r.max:
            raise ConfigError(f"search.{axis}.min={r.min} is larger than search.{axis}.max={r.max}")
        _positive(f"search.{axis}.step", r.step)
    _positive("search.target", s.target)
    for key in ("tolerance", "flops_tolerance", "match_tolerance", "pruner_startup_trials", "pruner_warmup_epochs"):
        if getattr(s, key) < 0:
            raise ConfigError(f"search.{key}={getattr(s, key)} must be >= 0")
    for key in ("phi_max", "seeds", "max_attempts", "trials"):
        _positive(f"search.{key}", getattr(s, key))
    for key in ("confirm_top", "confirm_seeds"):
        if getattr(s, key) < 0:
            raise ConfigError(f"search.{key}={getattr(s, key)} must be >= 0 (search.confirm_top=0 turns confirmation off)")
    if s.phi_min > s.phi_max:
        raise ConfigError(f"search.phi_min={s.phi_min} must be <= search.phi_max={s.phi_max}")
    if not 0 <= s.pruner_min_agreement <= 1:
        raise ConfigError(f"search.pruner_min_agreement={s.pruner_min_agreement} is not in 0..1 "
                          "(a Kendall tau; 0 turns the gate off)")
    for key in ("max_candidates", "timeout"):  # None: no cap
        if getattr(s, key) is not None:
            _positive(f"search.{key}", getattr(s, key))
    _choice("search.pruner", s.pruner, PRUNERS)
    _choice("search.space", s.space, SPACES)
    if s.space == "shares" and cfg.series:
        raise ConfigError("search.space=shares searches one base's rule: an experiment's series are fixed points (use space=grid)")
    _choice("search.role", s.role, ROLES)

    t = cfg.train
    for key in ("epochs", "batch_size", "lr", "eval_batch_size"):
        _positive(f"train.{key}", getattr(t, key))
    if t.bn_images < 0:
        raise ConfigError(f"train.bn_images={t.bn_images} must be >= 0 (0 = off)")
    if t.max_images is not None:
        _positive("train.max_images", t.max_images)
    per_epoch = _synthetic_train_images(cfg)
    if per_epoch is not None and per_epoch < t.batch_size:
        raise ConfigError(
            f"train.batch_size={t.batch_size} is larger than the {per_epoch} training images of an epoch "
            "(data.synthetic_size, data.val_fraction, data.num_train, train.max_images): no whole batch to train on"
        )
    if not 0 <= t.momentum < 1:
        raise ConfigError(f"train.momentum={t.momentum} must be in [0, 1)")
    if t.weight_decay < 0:
        raise ConfigError(f"train.weight_decay={t.weight_decay} must be >= 0")
    if not 0 <= t.label_smoothing < 1:
        raise ConfigError(f"train.label_smoothing={t.label_smoothing} must be in [0, 1)")
    if not 0 <= t.crop_padding < 0.5:
        raise ConfigError(f"train.crop_padding={t.crop_padding} must be in [0, 0.5)")
    for key, choices in (("schedule", SCHEDULES), ("optimizer", OPTIMIZERS), ("device", DEVICES), ("precision", PRECISIONS)):
        _choice(f"train.{key}", getattr(t, key), choices)
    if t.device == "cuda" and not _cuda_available():
        raise ConfigError("train.device=cuda but this machine has no CUDA device: use train.device=auto or cpu")
    if t.threads < 0:
        raise ConfigError(f"train.threads={t.threads} must be >= 0 (0 = all cores)")

    _choice("storage.kind", cfg.storage.kind, STORAGES)
    if s.workers < 0:
        raise ConfigError(f"search.workers={s.workers} must be >= 0 (0: as many processes as this machine runs well)")
    if (s.role == "worker" or s.workers > 1) and cfg.storage.kind == "sqlite":
        what = "search.role=worker" if s.role == "worker" else f"search.workers={s.workers}"
        raise ConfigError(f"{what} needs storage=journal or storage=postgres: "
                          "SQLite runs queued trials twice under several processes")
    _positive("storage.heartbeat_interval", cfg.storage.heartbeat_interval)
    if cfg.storage.grace_period <= cfg.storage.heartbeat_interval:
        raise ConfigError(f"storage.grace_period={cfg.storage.grace_period} must be larger than "
                          f"storage.heartbeat_interval={cfg.storage.heartbeat_interval}")
    _check_run_folder(cfg)
