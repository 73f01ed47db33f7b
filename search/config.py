"""The structured config schema of `run_search.py`, and the checks Hydra's types cannot express
(those of the command line, before Hydra composes, are in search/cli.py). Every field is documented
where it is defined; the YAML files under conf/ only choose values.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from models import BASES, BUILDERS, VARIANTS
from models.own import register_own
from search.data import DataConfig

PRUNERS = ("median", "none", "halving", "hyperband")
SCHEDULES = ("cosine", "onecycle")
OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
STORAGES = ("sqlite", "journal", "postgres")
ROLES = ("coordinator", "worker")
SPACES = ("grid", "shares")


class ConfigError(ValueError):
    """A config value that cannot work; the message names it and what would be valid."""


@dataclass
class BaseConfig:
    name: str = "mobilenetv2"  # a network of models.BASES
    variant: str = "small"  # imagenet (total stride 32) or small (28-64 px inputs: stem stride 1)
    resolution: int = 32  # input size of the proxy base (r = 1)
    depth: float = 1.0  # proxy base depth multiplier; a candidate's d is depth * alpha
    width: float = 0.5  # proxy base width multiplier; a candidate's w is width * beta
    resolution_divisor: int = 1  # candidate input sizes are rounded to a multiple of this
    spec: Any = None  # your own base as a stage table (models/spec.py NetSpec fields; README "Scale your own network")
    builder: Optional[str] = None  # or any PyTorch network: module:function or file.py:function (models/own.py)


@dataclass
class RangeConfig:
    min: float = 1.0  # smallest value (>= 1: candidates never shrink the base)
    max: float = 2.0  # largest value (inclusive)
    step: float = 0.1  # grid step (> 0)


@dataclass
class SearchConfig:
    space: str = "grid"  # grid: the alpha/beta/gamma grid below | shares: Optuna samples the rule (models/rules.py) at `target`
    trials: int = 12  # space=shares: networks to train (a sample that rounds to a trained network reuses its score)
    alpha: RangeConfig = field(default_factory=lambda: RangeConfig(1.0, 2.0, 0.1))  # depth coefficient
    beta: RangeConfig = field(default_factory=lambda: RangeConfig(1.0, 1.5, 0.05))  # width coefficient
    gamma: RangeConfig = field(default_factory=lambda: RangeConfig(1.0, 1.5, 0.05))  # resolution coefficient
    target: float = 2.0  # alpha * beta^2 * gamma^2 ~= target (FLOPs grow by target per phi step)
    tolerance: float = 0.05  # keep grid points with |alpha * beta^2 * gamma^2 - target| <= tolerance
    flops_tolerance: float = 0.15  # then keep those whose measured FLOPs ratio is within target * (1 +- this)
    max_candidates: Optional[int] = None  # cap on kept candidates, closest measured ratio first (None = all)
    phi_min: int = 0  # best.yaml lists the family phi = phi_min..phi_max (phi < 0: smaller than the base)
    phi_max: int = 4
    seeds: int = 1  # proxy trainings per candidate (score = mean); the pruner watches the first
    pruner: str = "median"  # median | none | halving | hyperband
    pruner_startup_trials: int = 2  # trials completed before the median pruner may prune
    pruner_warmup_epochs: int = 0  # epochs before the median pruner may stop a trial (0: after its first epoch)
    pruner_min_agreement: float = 0.6  # prune at an epoch only once its Kendall tau against the final score,
    # measured over >= 3 finished candidates, reaches this (search/pruning.py); 0: the pruner alone decides
    match_tolerance: float = 0.03  # experiments: warn when a solved point misses its FLOPs target by more
    dry_run: bool = False  # write candidates.csv and stop before training
    role: str = "coordinator"  # coordinator (enqueue, then work) | worker (join: only claim queued candidates)
    workers: int = 1  # processes on this machine (the coordinator + workers - 1 it starts); > 1 needs storage=journal or postgres
    max_attempts: int = 2  # tries of a candidate that crashes or whose process dies before it is failed for good
    timeout: Optional[float] = None  # seconds: a process claims no new candidate after this (rerun to resume the rest)


@dataclass
class SeriesConfig:
    """One line of an experiment's figure (search/plan/series.py explains the forms)."""

    base: Any = None  # None = the run's base; a conf/base option, {name: ..., width: ...} to change its fields,
    # or a whole base composed from any config folder: `- /base@series.<this name>.base: <option>` in the defaults
    d: Any = 1.0  # depth multiplier(s) over the proxy base: a number or a list
    w: Any = 1.0  # width multiplier(s)
    r: Any = 1.0  # resolution multiplier(s)
    phi: Any = None  # compound coefficient(s): d, w, r = alpha^phi, beta^phi, gamma^phi
    coefficients: Any = "paper"  # alpha, beta, gamma: paper (1.2, 1.1, 1.15), a rule of models/rules.py, [a, b, g] or a best.yaml
    solve: Optional[str] = None  # d | w | r | phi: solved by bisection on measured FLOPs
    match: Optional[str] = None  # solve for the FLOPs of each point of this (earlier) series
    flops_ratio: Any = None  # or solve for these FLOPs ratio(s) to this series' base


@dataclass
class TrainConfig:
    epochs: int = 4  # proxy training epochs (one validation report to the pruner after each)
    max_images: Optional[int] = None  # cap on training images per epoch (None = the whole train split)
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw (decoupled weight decay; beta2 0.99) | sgd (Nesterov momentum): conf/train/sgd.yaml
    lr: float = 0.003  # peak learning rate
    momentum: float = 0.9  # sgd: Nesterov momentum; adamw: beta1
    weight_decay: float = 0.05  # not on batch norm or biases (sgd: 5e-4)
    schedule: str = "cosine"  # cosine (with linear warm-up) | onecycle
    warmup_epochs: float = 0.25  # cosine: linear warm-up length in epochs
    label_smoothing: float = 0.1
    flip: bool = True  # random horizontal flips
    crop_padding: float = 0.125  # random translations of up to this fraction of the side (0 = off)
    eval_batch_size: int = 256  # 1024 measured slower on a 2-core CPU and 0.7 GB more memory
    bn_images: int = 512  # training images that re-estimate batch-norm statistics before each evaluation (0 = off)
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda (local worker k uses GPU k mod the GPU count)
    precision: str = "auto"  # CUDA: auto (bf16 where supported, else fp16 with a gradient scaler) | bf16 | fp16 | fp32; CPU: fp32
    deterministic: bool = False  # CUDA: reproducible kernels (cuDNN benchmark off, deterministic algorithms); slower
    threads: int = 0  # CPU threads of this process (0 = all cores; divide them among local workers)
    channels_last: bool = True
    seed: int = 0  # seed of the first proxy training; seed k uses seed + k


@dataclass
class StorageConfig:
    kind: str = "sqlite"  # sqlite (one process) | journal (local workers) | postgres (several machines)
    path: Optional[str] = None  # sqlite/journal file (None = inside the run folder)
    url: Optional[str] = None  # postgres URL; None reads $OPTUNA_STORAGE_URL
    heartbeat_interval: int = 10  # seconds between a running trial's heartbeats (journal, postgres)
    grace_period: int = 60  # seconds without a heartbeat after which a running trial is stale: failed and re-queued


@dataclass
class Config:
    name: str = "${base.name}-${data.name}"  # run folder under runs/ and Optuna study name
    runs_dir: str = "runs"  # parent folder of all runs
    base: BaseConfig = field(default_factory=BaseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    series: Dict[str, SeriesConfig] = field(default_factory=dict)  # experiments: explicit series instead of the grid
    experiment: Any = None  # experiment presets set other groups' values (conf/experiment/)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def register() -> None:
    """Make the schema known to Hydra so every YAML value is type-checked against it."""
    ConfigStore.instance().store(name="schema", node=Config)


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
    if cfg.storage.kind != "sqlite":
        return
    db = Path(str(cfg.storage.path or run_dir / "study.db"))
    if not db.is_file():
        return
    try:  # read-only: neither creates nor changes anything
        with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as con:
            con.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as e:
        where = f"{cfg.runs_dir}/{cfg.name}/study.db" if cfg.storage.path is None else f"storage.path={db}"
        raise ConfigError(f"{where} is not an SQLite database ({e}): move it away or choose another name=") from None


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
    _positive("search.workers", s.workers)
    if (s.role == "worker" or s.workers > 1) and cfg.storage.kind == "sqlite":
        what = "search.role=worker" if s.role == "worker" else f"search.workers={s.workers}"
        raise ConfigError(f"{what} needs storage=journal or storage=postgres: "
                          "SQLite runs queued trials twice under several processes")
    _positive("storage.heartbeat_interval", cfg.storage.heartbeat_interval)
    if cfg.storage.grace_period <= cfg.storage.heartbeat_interval:
        raise ConfigError(f"storage.grace_period={cfg.storage.grace_period} must be larger than "
                          f"storage.heartbeat_interval={cfg.storage.heartbeat_interval}")
    _check_run_folder(cfg)
