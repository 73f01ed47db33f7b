"""The structured config schema of `run_search.py`. Every field is documented where it is defined; the
YAML files under conf/ only choose values. The checks Hydra's types cannot express are in
search/validate.py (those of the command line, before Hydra composes, in search/cli.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore

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
    confirm_top: int = 2  # once all are scored, more seeds for the K best until the K best all have them (0: off)
    confirm_seeds: int = 3  # seeds a confirmed candidate ends with (search/confirm.py; <= seeds: nothing to add)
    pruner: str = "median"  # median | none | halving | hyperband
    pruner_startup_trials: int = 2  # trials completed before the median pruner may prune
    pruner_warmup_epochs: int = 0  # epochs before the median pruner may stop a trial (0: after its first epoch)
    pruner_min_agreement: float = 0.6  # prune at an epoch only once its Kendall tau against the final score,
    # measured over >= 3 finished candidates, reaches this (search/pruning.py); 0: the pruner alone decides
    match_tolerance: float = 0.03  # experiments: warn when a solved point misses its FLOPs target by more
    dry_run: bool = False  # write candidates.csv and stop before training
    role: str = "coordinator"  # coordinator (enqueue, then work) | worker (join: only claim queued candidates)
    workers: int = 0  # processes on this machine (the coordinator + workers - 1 it starts); > 1 needs storage=journal
    # or postgres; 0: one per core on CPU (as memory allows), one per GPU, one with SQLite (search/trials/workers.py)
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
    checkpoint: bool = True  # save each epoch's state in runs/<name>/checkpoints/: an interrupted training resumes from it
    seed: int = 0  # seed of the first proxy training; seed k uses seed + k


@dataclass
class StorageConfig:
    kind: str = "journal"  # journal (local workers) | sqlite (one process) | postgres (several machines)
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


def register() -> None:
    """Make the schema known to Hydra so every YAML value is type-checked against it."""
    ConfigStore.instance().store(name="schema", node=Config)
