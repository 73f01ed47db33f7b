"""How far to trust a search's ranking: re-score its candidates with more seeds and a longer budget.

    python -m search.fidelity runs/<name> [--factor 4] [--seeds 3] [--top-k K] [--workers N] [--threads T]

Every kept candidate of a finished grid or share search (or, with --top-k K, the K best and K
others spread over the rest of its ranking) is trained for seeds train.seed .. train.seed + seeds - 1
at the proxy budget (train.epochs) and at factor times as many epochs. One Optuna trial per (candidate,
budget, seed), through the search's own trial loop and storage, in a second study named
"<name>.fidelity": resumable, and nothing is trained twice; proxy-budget seeds that the search
already completed are taken from its trials.csv. --workers N trains N trials at a time, as search.workers
does (0: as search.workers=0 counts them). Writes fidelity.csv, .md and .yaml (search/evidence.py: the statistics).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from optuna.trial import TrialState

from search import checkpoint, evidence, storage
from search.config import Config, ConfigError
from search.data import DataError
from search.results import write_atomic, write_csv
from search.record import SEARCH_SERIES
from search.results.tables import seed_list
from search.storage import StorageError, queue
from search.trials import workers
from search.trials.context import load_data, open_context, optuna_ranges
from search.trials.loop import work

STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1}  # how the search ranks its trials; failed and unrun ones last
TRUST_TAU = 0.6  # an epoch's ranking is trusted when its tau against the long budget is at least this
COLUMNS = ["key", "alpha", "beta", "gamma", "resolution", "flops", "proxy_mean", "proxy_std", "proxy_n",
           "long_mean", "long_std", "long_n", "proxy_rank", "long_rank", "proxy_leader", "long_leader"]


def read_run(run_dir: Path):
    """The run's config (its storage URL unredacted), kept candidates ranked by the search, and trials.csv."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a folder: pass a run folder written by run_search.py (runs/<name>)")
    for name in ("config.yaml", "candidates.csv", "trials.csv"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir} has no {name}: run the search to the end first (a dry run trains nothing)")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    try:  # keys added since the search was run get their defaults
        cfg = OmegaConf.merge(OmegaConf.structured(Config), config)
    except OmegaConfBaseException:
        cfg = OmegaConf.create(config)
    points, trials = pd.read_csv(run_dir / "candidates.csv"), pd.read_csv(run_dir / "trials.csv")
    if not points.series.isin(SEARCH_SERIES).all():
        raise ConfigError(f"{run_dir} is an experiment (series {', '.join(dict.fromkeys(points.series))}): "
                          "search.fidelity re-scores the candidates of a grid or share search")
    kept = points[points.kept.astype(bool)].drop_duplicates("key")
    if kept.empty:
        raise ConfigError(f"{run_dir} has no kept candidates to re-score")
    order = trials.assign(_state=trials.state.map(STATE_ORDER).fillna(len(STATE_ORDER)),
                          _score=-pd.to_numeric(trials.score, errors="coerce"))
    order = order.sort_values(["_state", "_score", "number"], na_position="last").drop_duplicates("key")
    kept = kept.merge(order[["key", "_state", "_score", "number"]], on="key", how="left")
    kept = kept.sort_values(["_state", "_score", "number"], na_position="last")[points.columns]
    records = kept.astype(object).where(kept.notna(), None).to_dict("records")  # plain Python values
    return storage.unredact(cfg), records, trials


def pick(records: list[dict], top_k: int | None) -> list[dict]:
    """All candidates, or the top_k best and top_k others spread evenly over the rest of the ranking."""
    if top_k is None or len(records) <= 2 * top_k:
        return records
    rest = records[top_k:]
    return records[:top_k] + [rest[i] for i in np.linspace(0, len(rest) - 1, top_k).round().astype(int)]


def from_search(trials: pd.DataFrame, seeds: int) -> dict[str, list[tuple[float, list]]]:
    """(score, curve) of each proxy-budget seed a completed search trial already measured."""
    reused = {}
    trained = trials.duplicate_of.isna() if "duplicate_of" in trials else True  # a share search's repeats trained nothing
    for row in trials[(trials.state == "COMPLETE") & trained].itertuples():
        scores, curves = seed_list(row.seed_scores), seed_list(row.accuracies)
        reused[row.key] = list(zip(scores, curves))[:seeds]
    return reused


def study_name(search_name: str) -> str:
    """The fidelity study of a search (search/confirm.py trains its proxy-budget seeds of the best too)."""
    return f"{search_name}.fidelity"


def trial_key(candidate: str, budget: str, seed: int, epochs: int | None = None) -> str:
    """The long budget's key names its epochs: a rerun with another --factor must not read these scores as its own."""
    label = budget if budget == "proxy" else f"{budget}={epochs}"
    return f"{candidate}|{label}|seed={seed}"


def plan(candidates, budgets: dict, seeds: list[int], reused: dict) -> list[dict]:
    """One trial record per (candidate, budget, seed) that the search has not measured already."""
    return [
        dict(c, key=trial_key(c["key"], budget, seed, epochs), candidate=c["key"], epochs=epochs, seed=seed)
        for c in candidates for budget, epochs in budgets.items() for k, seed in enumerate(seeds)
        if not (budget == "proxy" and k < len(reused.get(c["key"], ())))
    ]


def collect(study, candidates, budgets: dict, seeds: list[int], reused: dict):
    """Scores shaped (candidates, seeds) per budget, and proxy curves (candidates, seeds, epochs); NaN = missing."""
    done = {t.user_attrs.get("key"): t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    epochs = budgets["proxy"]
    scores = {b: np.full((len(candidates), len(seeds)), np.nan) for b in budgets}
    curves = np.full((len(candidates), len(seeds), epochs), np.nan)
    for i, c in enumerate(candidates):
        for k, seed in enumerate(seeds):
            for budget, length in budgets.items():
                t = done.get(trial_key(c["key"], budget, seed, length))
                if budget == "proxy" and k < len(reused.get(c["key"], ())):
                    score, curve = reused[c["key"]][k]
                elif t is not None:
                    score, curve = t.value, seed_list(t.user_attrs.get("accuracies"))[0]
                else:
                    continue
                scores[budget][i, k] = score
                if budget == "proxy":
                    curve = curve[:epochs]
                    curves[i, k, : len(curve)] = curve
    return scores["proxy"], scores["long"], curves


def nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # all seeds failed: NaN, no warning
        return np.nanmean(a, axis=axis)


def table(candidates, short: np.ndarray, long: np.ndarray) -> pd.DataFrame:
    """fidelity.csv: each candidate's mean, std (over seeds) and count per budget, and its rank at each."""
    out = pd.DataFrame([{k: c[k] for k in COLUMNS[:6]} for c in candidates])
    for budget, a in (("proxy", short), ("long", long)):
        n = (~np.isnan(a)).sum(1)
        with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
            std = np.where(n >= 2, np.nanstd(a, axis=1, ddof=1), np.nan)
        out[f"{budget}_mean"], out[f"{budget}_std"], out[f"{budget}_n"] = nanmean(a, 1).round(6), std.round(6), n
        out[f"{budget}_rank"] = out[f"{budget}_mean"].rank(ascending=False, method="min").astype("Int64")
        out[f"{budget}_leader"] = evidence.leaders(a)  # within seed noise of that budget's best
    return out[COLUMNS]


def percent(mean: float, std: float, leader: bool = False) -> str:
    if np.isnan(mean):
        return "n/a"
    return f"{100 * mean:.1f}" + ("" if np.isnan(std) else f" ± {100 * std:.1f}") + (" *" if leader else "")


def num(value, fmt: str = ".2f") -> str:
    return "n/a" if value is None or not np.isfinite(value) else format(value, fmt)


def rank(value) -> str:
    return "n/a" if pd.isna(value) else str(int(value))


def markdown(rows: pd.DataFrame, s: evidence.FidelitySummary, agreement: list[float], budgets: dict,
             seeds: list[int], n_reused: int) -> str:
    """fidelity.md: the table, then what its numbers say about the search's ranking."""
    trusted = evidence.earliest_trustworthy_epoch(agreement, TRUST_TAU)
    lines = [
        "## How far to trust the ranking", "", s.sentence() + ".", "",
        f"Each candidate trained with seeds {seeds[0]}..{seeds[-1]} at the proxy budget ({budgets['proxy']} epochs) "
        f"and at {s.budget_factor:g}x that ({budgets['long']} epochs); {n_reused} proxy-budget runs come from the "
        "search itself. Validation accuracy in percent, mean ± std over seeds; * marks the leaders, the candidates "
        "seed noise cannot rank below that budget's best.", "",
        "| candidate | MFLOPs | proxy | long | proxy rank | long rank |", "|---|---|---|---|---|---|",
    ]
    for r in rows.itertuples():
        lines.append(f"| α={r.alpha:g} β={r.beta:g} γ={r.gamma:g} ({r.resolution} px) | {r.flops / 1e6:.1f} | "
                     f"{percent(r.proxy_mean, r.proxy_std, r.proxy_leader)} | {percent(r.long_mean, r.long_std, r.long_leader)} | "
                     f"{rank(r.proxy_rank)} | {rank(r.long_rank)} |")
    per_epoch = ", ".join(f"epoch {e}: {num(t)}" for e, t in enumerate(agreement, 1))
    lines += [
        "",
        f"- Kendall tau between the proxy and the long-budget ranking: {num(s.tau)} "
        f"(bootstrap 95% interval over seeds [{num(s.tau_low)}, {num(s.tau_high)}]; 1 = the same order).",
        f"- Top-1 regret: {num(100 * s.regret, '.1f')} points (how far the proxy's best candidate falls short "
        f"of the long budget's best, at the long budget){', ' + s.regret_noise() if s.regret_noise() else ''}.",
        f"- Leaders: {s.leaders_short} of {s.n_candidates} at the proxy budget, {s.leaders_long} at the long budget: "
        "the candidates whose gap to that budget's best is within seed noise (Welch's one-sided t test at 95%, "
        "as best.yaml's verdict; a candidate with one seed cannot be excluded). More than one leader at the "
        "long budget means the reference itself cannot name a single best.",
        f"- Spread between candidates (best mean - worst mean) in units of the pooled seed std: "
        f"{num(s.spread_over_noise_short, '.1f')}x at the proxy budget (std {num(100 * s.seed_noise_short, '.1f')} "
        f"points), {num(s.spread_over_noise_long, '.1f')}x at the long budget (std "
        f"{num(100 * s.seed_noise_long, '.1f')} points). The smaller it is, the more seed noise decides the order.",
        f"- Rank agreement of each proxy epoch (mean accuracy over seeds) with the long-budget means: {per_epoch}. "
        + (f"A pruner may trust the ranking from epoch {trusted} on (tau >= {TRUST_TAU:g} there and after)."
           if trusted else f"No epoch reaches tau >= {TRUST_TAU:g} for good: pruning on this proxy is a gamble."),
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a finished search's folder (runs/<name>)")
    parser.add_argument("--factor", type=float, default=4, help="long budget = factor x train.epochs (default 4)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per candidate and budget (default 3)")
    parser.add_argument("--top-k", type=int, default=None, help="only the K best and K others spread over the rest")
    parser.add_argument("--workers", type=int, default=0,
                        help="trials trained at a time, one process each (default 0: as search.workers=0 counts them)")
    parser.add_argument("--threads", type=int, default=None,
                        help="training threads per process (default: the run's train.threads; 0: cores / workers)")
    parser.error = lambda message: sys.exit(_fail(message))  # one line, not argparse's usage block
    args = parser.parse_args(argv)
    try:
        if args.seeds < 1:
            raise ConfigError(f"--seeds={args.seeds} must be >= 1")
        if args.top_k is not None and args.top_k < 1:
            raise ConfigError(f"--top-k={args.top_k} must be >= 1")
        if args.workers < 0:
            raise ConfigError(f"--workers={args.workers} must be >= 0 (0: one process per core, as search.workers=0)")
        if args.threads is not None and args.threads < 0:
            raise ConfigError(f"--threads={args.threads} must be >= 0 (0: the cores divided among the workers)")
        if not 1 < args.factor < math.inf:
            raise ConfigError(f"--factor={args.factor:g} must be > 1 (the long budget is factor x train.epochs)")
        cfg, records, trials = read_run(args.run_dir)
        budgets = {"proxy": int(cfg.train.epochs), "long": int(round(cfg.train.epochs * args.factor))}
        if budgets["long"] <= budgets["proxy"]:
            raise ConfigError(f"--factor={args.factor:g} x {budgets['proxy']} epochs rounds to no longer budget")
        if args.workers > 1 and cfg.storage.kind == "sqlite":
            raise ConfigError(f"--workers={args.workers} needs the run's storage to be journal or postgres; "
                              f"{args.run_dir} uses sqlite, which one process writes at a time (use --workers 1, "
                              "or run the search with storage=journal)")
        storage.check_reachable(cfg)
        cfg.search.workers = args.workers
        if args.threads is not None:  # how fast, not what: the scores' settings stay the run's
            cfg.train.threads = args.threads
        return rescore(args.run_dir.resolve(), cfg, pick(records, args.top_k), records, trials, budgets, args.seeds)
    except (ConfigError, DataError, StorageError, workers.WorkerError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def rescore(run_dir: Path, cfg, candidates, everything, trials, budgets: dict, n_seeds: int) -> int:
    """Train what is missing in the fidelity study, then write fidelity.csv and fidelity.md."""
    search_name = cfg.name
    cfg.runs_dir, cfg.name = str(run_dir.parent), run_dir.name  # the folder as given
    seeds = [int(cfg.train.seed) + k for k in range(n_seeds)]
    reused = from_search(trials, n_seeds)
    todo = plan(candidates, budgets, seeds, reused)
    splits = load_data(cfg)
    chosen = workers.resolve_auto(cfg, candidates, splits, len(todo))
    if chosen:
        print(chosen.replace("search.workers=0", "--workers 0"))
    ctx = open_context(cfg, optuna_ranges(everything), splits, study_name=study_name(search_name), pruner="none")
    if cfg.storage.kind == "sqlite":
        queue.requeue_interrupted(ctx.study, ctx.params_of)
    queue.enqueue_missing(ctx.study, todo, ctx.params_of)
    pool = workers.start(cfg, len(todo), ctx.ranges, ctx.study.study_name, "none") if cfg.search.workers > 1 else []
    work(ctx, len(todo))
    died = workers.wait(pool)  # a dead worker's trial went stale and was trained again by another process
    checkpoint.remove_empty_folder(run_dir)
    short, long, curves = collect(ctx.study, candidates, budgets, seeds, reused)
    summary = evidence.summarize(short, long, budgets["long"] / budgets["proxy"])
    agreement = evidence.epoch_rank_agreement(nanmean(curves, 1), nanmean(long, 1))
    rows = table(candidates, short, long)
    n_reused = sum(min(len(reused.get(c["key"], ())), n_seeds) for c in candidates)
    write_csv(run_dir / "fidelity.csv", rows)
    write_atomic(run_dir / "fidelity.md", markdown(rows, summary, agreement, budgets, seeds, n_reused))
    numbers = figures(summary, agreement, budgets, seeds)
    write_atomic(run_dir / "fidelity.yaml", yaml.safe_dump(numbers, sort_keys=False))
    print(summary.sentence(), *(run_dir / f"fidelity.{ext}" for ext in ("csv", "md", "yaml")), sep="\n")
    workers.raise_if_died(died)
    return 0


def figures(s: evidence.FidelitySummary, agreement: list[float], budgets: dict, seeds: list[int]) -> dict:
    """fidelity.yaml: the summary's numbers, for scripts (bench/evidence.py); NaN becomes null."""
    def plain(v):
        return None if v is None or not math.isfinite(v) else round(float(v), 6)

    out = {k: (plain(v) if isinstance(v, float) else v) for k, v in dataclasses.asdict(s).items()}
    out.update(budgets_epochs=budgets, seeds=len(seeds), epoch_agreement=[plain(t) for t in agreement],
               trusted_from_epoch=evidence.earliest_trustworthy_epoch(agreement, TRUST_TAU))
    return out


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
