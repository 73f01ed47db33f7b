"""One compound-scaling search, from a composed config to the files in runs/<name>/."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from models import build_model, scaled_spec
from search import candidates as cands
from search import heartbeat as hb
from search import study as st
from search import workers
from search.config import BaseConfig
from search.series import SeriesSpec, experiment_points
from search.config import ConfigError, validate
from search.data import DataConfig, load_splits
from search.interrupt import kept_ctrl_c, raise_if_ctrl_c
from search.memory import release_memory
from search.proxy import TrainingDiverged, channel_stats, prepare, resolve_device, steps_in_epoch, train
from search.results import best_summary, trials_table, write_csv, write_yaml

log = logging.getLogger("search")

WORKER_WAIT_SECONDS = 600  # how long a worker waits for the coordinator to enqueue the candidates
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
GRID_PARAMS = ("alpha", "beta", "gamma")  # Optuna params of a search (the importance plots use them)
SERIES_PARAMS = ("d", "w", "r")  # Optuna params of an experiment's points


def param_ranges(records: list[dict]) -> dict[str, tuple[float, float]]:
    """Each Optuna param of these candidates with the range its distribution records."""
    names = GRID_PARAMS if all(r["series"] == "grid" for r in records) else SERIES_PARAMS
    return {n: (min(r[n] for r in records), max(r[n] for r in records)) for n in names}


@dataclass
class Context:
    """Everything a worker needs to score candidates; data is resized once per resolution."""

    cfg: object
    base: cands.ProxyBase
    params: dict  # Optuna param name -> (low, high)
    train_split: object
    val_split: object
    device: torch.device
    _prepared: tuple = (None, None)  # (resolution, (train, val)): only the latest is kept

    def __post_init__(self):
        self.stats = channel_stats(self.train_split.images)  # normalisation of every resolution

    def params_of(self, rec: dict) -> dict:
        """The Optuna params of a candidate record (what it is enqueued with)."""
        return {name: rec[name] for name in self.params}

    def data_at(self, resolution: int):
        """The splits at `resolution`. Only one resolution is held: keeping every one a grid
        visits costs ~200 MB at the default, and re-resizing a set takes about a second."""
        if self._prepared[0] != resolution:
            self._prepared = (None, None)  # freed before the next one is made
            splits = (prepare(s, resolution, self.stats, self.device) for s in (self.train_split, self.val_split))
            self._prepared = (resolution, tuple(splits))
        return self._prepared[1]


def run_dir_of(cfg) -> Path:
    return (Path(cfg.runs_dir) / cfg.name).resolve()


def load_data(cfg):
    data_cfg = DataConfig(**OmegaConf.to_container(cfg.data, resolve=True))
    return load_splits(data_cfg)


def build_candidates(cfg, base: cands.ProxyBase) -> list[dict]:
    """The candidate records of the run: the experiment's series when it has any, else the grid."""
    return build_series(cfg, base) if cfg.series else build_grid(cfg, base)


def build_grid(cfg, base: cands.ProxyBase) -> list[dict]:
    """The grid's candidate records, measured; raises ConfigError when nothing is feasible."""
    s = cfg.search
    axes = [cands.axis_values(r.min, r.max, r.step) for r in (s.alpha, s.beta, s.gamma)]
    points = cands.grid(*axes, target=s.target, tolerance=s.tolerance)
    if not points:
        closest, (a, b, g) = cands.closest_product(*axes, s.target)
        raise ConfigError(
            f"no grid point has alpha*beta^2*gamma^2 within search.tolerance={s.tolerance} of "
            f"search.target={s.target}: the closest is {closest:.4f} at ({a}, {b}, {g}); widen the ranges or the tolerance"
        )
    records = cands.measure_and_filter(base, points, s.target, s.flops_tolerance, s.max_candidates)
    if not any(r["kept"] for r in records):
        closest = min(records, key=lambda r: abs(r["measured_ratio"] - s.target))
        raise ConfigError(
            f"no candidate's measured FLOPs ratio is within search.flops_tolerance={s.flops_tolerance} of "
            f"search.target={s.target}: the closest is {closest['measured_ratio']:.3f} ({closest['key']}); "
            "raise the tolerance or refine the grid"
        )
    return records


def series_base(base: cands.ProxyBase, choice) -> cands.ProxyBase:
    """The proxy base of a series: the run's (None), a conf/base option by name, or such an
    option with some fields changed ({name: resnet50, width: 0.25}); always on the run's data."""
    if choice is None:
        return base
    fields = dict(choice) if isinstance(choice, dict) else {"name": choice}
    path = CONF_DIR / "base" / f"{fields.get('name')}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in (CONF_DIR / "base").glob("*.yaml"))
        raise ConfigError(f"series base={fields.get('name')!r} is not one of: {', '.join(options)}")
    b = OmegaConf.merge(OmegaConf.structured(BaseConfig), OmegaConf.load(path), fields)
    return cands.ProxyBase(
        b.name, b.variant, b.depth, b.width, b.resolution, base.num_classes, base.in_channels, b.resolution_divisor
    )


def build_series(cfg, base: cands.ProxyBase) -> list[dict]:
    """An experiment's candidate records: one per (series, point), points solved and measured."""
    specs = [SeriesSpec(name, **OmegaConf.to_container(sc, resolve=True)) for name, sc in cfg.series.items()]
    bases = {spec.name: series_base(base, spec.base) for spec in specs}
    points = experiment_points(specs, lambda b, c: bases[b].macs(c))
    records = []
    for spec in specs:
        b = bases[spec.name]
        base_flops = b.complexity(cands.Candidate(1.0, 1.0, 1.0)).flops
        for c in points[spec.name]:
            rec = cands.describe(b, c, base_flops) | {"kept": True}
            miss = rec["flops"] / c.target_flops - 1 if c.target_flops == c.target_flops else 0.0
            if abs(miss) > cfg.search.match_tolerance:
                log.warning("series %s: %s is %+.1f%% off its FLOPs target (rounding allows no closer point)",
                            spec.name, rec["key"], 100 * miss)
            records.append(rec)
    return records


def unique_points(records: list[dict]) -> list[dict]:
    """One record per key (series that share a point share its trial), naming all its series."""
    by_key: dict[str, dict] = {}
    for rec in records:
        if rec["key"] in by_key:
            by_key[rec["key"]]["series"] += "+" + rec["series"]
        else:
            by_key[rec["key"]] = dict(rec)
    return list(by_key.values())


def objective(ctx: Context, trial: optuna.Trial, bar, step_done) -> float:
    """Proxy-train one candidate for each seed; the pruner watches the first seed.
    `step_done(images)` is called after every training step."""
    rec = trial.user_attrs
    for name, (low, high) in ctx.params.items():
        trial.suggest_float(name, low, high)  # returns the queued value; records the distribution
    train_data, val_data = ctx.data_at(rec["resolution"])
    release_memory()  # the last trial's and the resize's freed heap, before this training's peak
    t = ctx.cfg.train
    seeds = [t.seed + k for k in range(ctx.cfg.search.seeds)]
    scores, images, train_s, eval_s, curves = [], 0, 0.0, 0.0, []

    def record(**attrs):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)

    def report(result):
        epoch, accuracy = len(result.accuracies), result.accuracy
        trial.report(accuracy, epoch)  # step = epochs completed: the pruners' resource unit
        bar.set_postfix_str(f"epoch {epoch}: acc {accuracy:.3f}")
        if trial.should_prune():
            record(images_seen=result.images_seen, accuracies=[[round(a, 5) for a in result.accuracies]],
                   train_seconds=round(result.train_seconds, 3), eval_seconds=round(result.eval_seconds, 3))
            raise optuna.TrialPruned(f"pruned after epoch {epoch} at accuracy {accuracy:.3f}")

    for k, seed in enumerate(seeds):
        torch.manual_seed(seed)
        spec = scaled_spec(rec["base"], rec["depth"], rec["width"], rec["variant"])
        model = build_model(spec, ctx.base.num_classes, ctx.base.in_channels)
        result = train(
            model, train_data, val_data, t, ctx.device, seed,
            on_epoch=report if k == 0 else None, progress=step_done,
        )
        scores.append(result.accuracy)
        images += result.images_seen
        train_s += result.train_seconds
        eval_s += result.eval_seconds
        curves.append([round(a, 5) for a in result.accuracies])
    score = statistics.fmean(scores)
    record(score=score, score_std=statistics.pstdev(scores), seed_scores=scores, accuracies=curves,
           images_seen=images, train_seconds=round(train_s, 3), eval_seconds=round(eval_s, 3))
    return score


def work(ctx: Context, study: optuna.Study, storage, total: int) -> None:
    """Claim queued candidates one at a time and score them until the queue is empty."""
    t = ctx.cfg.train
    per_trial = steps_in_epoch(t, len(ctx.train_split)) * t.batch_size * t.epochs
    overall = tqdm(total=total, desc="search", unit="cand", position=0, disable=None)
    states = st.count_states(study)
    overall.update(total - states.get("WAITING", 0) - states.get("RUNNING", 0))
    grace = st.heartbeat_grace(ctx.cfg)
    interval = ctx.cfg.storage.heartbeat_interval if grace is not None else None
    with kept_ctrl_c():
        while (trial := hb.claim_next(study, storage, grace, ctx.params_of, poll=ctx.cfg.storage.heartbeat_interval)):
            run_trial(ctx, study, storage, trial, per_trial, interval)
            overall.update(1)
            raise_if_ctrl_c()
    overall.close()


def run_trial(ctx: Context, study: optuna.Study, storage, trial, per_trial: int, interval) -> None:
    """Score one claimed trial and tell the study how it ended."""
    key = trial.user_attrs.get("key")
    bar = tqdm(total=per_trial * ctx.cfg.search.seeds, desc=f"trial {trial.number}", unit="img",
               leave=False, position=1, disable=None)

    def step_done(images: int) -> None:
        raise_if_ctrl_c()
        bar.update(images)

    try:
        with hb.Heartbeat(storage, trial._trial_id, interval):  # noqa: SLF001
            value = objective(ctx, trial, bar, step_done)
        study.tell(trial, value)
        log.info("trial %d %s: score %.4f", trial.number, key, value)
    except optuna.TrialPruned as e:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        log.info("trial %d %s: %s", trial.number, key, e)
    except TrainingDiverged as e:
        trial.set_user_attr(st.FAILURE_ATTR, str(e))
        trial.set_user_attr(st.FINAL_ATTR, True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.warning("trial %d %s failed: %s", trial.number, key, e)
    except BaseException as e:  # Ctrl-C or a crash: the candidate goes back to the queue
        trial.set_user_attr(st.FAILURE_ATTR, f"interrupted: {type(e).__name__}")
        st.requeue(study, trial.number, trial.user_attrs, ctx.params_of)
        raise
    finally:
        bar.close()


def run(cfg) -> int:
    """Run (or resume) the search described by `cfg`; returns the process exit code."""
    validate(cfg)
    st.check_reachable(cfg)  # before anything is written: a bad storage URL changes no files
    run_dir = run_dir_of(cfg)
    started = time.perf_counter()
    train_split, val_split = load_data(cfg)
    base = cands.ProxyBase(
        cfg.base.name, cfg.base.variant, cfg.base.depth, cfg.base.width, cfg.base.resolution,
        train_split.num_classes, train_split.channels, cfg.base.resolution_divisor,
    )
    records = build_candidates(cfg, base)
    table = pd.DataFrame(records, columns=cands.CANDIDATE_COLUMNS)
    table = table.astype({"fvcore_flops": "Int64", "activations": "Int64"})  # empty where not traced
    run_dir.mkdir(parents=True, exist_ok=True)
    _log_to(run_dir / "search.log")
    write_yaml(run_dir / "config.yaml", st.redact(OmegaConf.to_container(cfg, resolve=True)))
    write_csv(run_dir / "candidates.csv", table)
    kept = unique_points([r for r in records if r["kept"]])
    print(table.drop(columns=["key", "base", "variant", "num_classes", "in_channels"]).to_string(index=False))
    if cfg.series:
        print(f"{len(kept)} distinct points in {len(cfg.series)} series; candidates.csv in {run_dir}")
    else:
        print(f"{len(kept)} of {len(records)} grid points kept (measured FLOPs ratio within "
              f"{cfg.search.flops_tolerance:.0%} of {cfg.search.target}); candidates.csv in {run_dir}")
    if cfg.search.dry_run:
        return 0

    _set_threads(cfg)
    ctx = Context(cfg, base, param_ranges(kept), train_split, val_split, resolve_device(cfg.train.device))
    storage = st.make_storage(cfg, run_dir)
    s = cfg.search
    pruner = st.make_pruner(s.pruner, s.pruner_startup_trials, cfg.train.epochs, s.pruner_warmup_epochs)
    study = st.open_study(storage, cfg.name, pruner)
    if cfg.search.role == "coordinator":
        if cfg.storage.kind == "sqlite":
            requeued = st.requeue_interrupted(study, ctx.params_of)
            if requeued:
                log.info("re-queued %d candidate(s) interrupted in an earlier run", requeued)
        added = st.enqueue_missing(study, kept, ctx.params_of)
        log.info("study %r: %d candidate(s) queued now, %d in total; storage %s",
                 cfg.name, added, len(kept), st.storage_hint(cfg, run_dir))
    elif not st.wait_for_queue(study, timeout=WORKER_WAIT_SECONDS):
        raise ConfigError(
            f"search.role=worker found no candidates in study {cfg.name!r} after {WORKER_WAIT_SECONDS} s: "
            "start the coordinator (the same command without search.role=worker) first"
        )
    pool = workers.start(cfg, len(kept), ctx.params) if cfg.search.workers > 1 else []
    work(ctx, study, storage, len(kept))
    died = workers.wait(pool)

    trials = trials_table(study)
    write_csv(run_dir / "trials.csv", trials)
    best = best_summary(cfg, trials)
    if best is not None:
        write_yaml(run_dir / "best.yaml", best)
    _print_summary(trials, list(ctx.params), best, run_dir, time.perf_counter() - started)
    workers.raise_if_died(died)
    return 0


def _log_to(path: Path) -> None:
    """Append this process's log records to the run's log file (once per path)."""
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))


def _set_threads(cfg) -> None:
    if cfg.train.threads or cfg.search.workers > 1:
        torch.set_num_threads(workers.threads_per_process(cfg))


def _print_summary(trials: pd.DataFrame, params: list[str], best, run_dir: Path, seconds: float) -> None:
    shown = trials[trials.state != "FAIL"].copy()
    shown["score"] = pd.to_numeric(shown["score"], errors="coerce")
    shown = shown.sort_values("score", ascending=False, na_position="last")
    columns = ["number", "state", "series", *params, "resolution", "measured_ratio", "score", "images_seen"]
    print(shown[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if best is not None:
        print(f"best: alpha={best['alpha']} beta={best['beta']} gamma={best['gamma']} "
              f"score={best['score']:.4f} -> {run_dir / 'best.yaml'}")
    print(f"done in {seconds:.0f} s; results in {run_dir}")
