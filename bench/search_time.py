"""Wall time, memory and pruning effect of the default search, `run_search.py base=mobilenetv2`.

    python bench/search_time.py [--quick] [--base mobilenetv2]

Runs the search three times in fresh run folders under /tmp, each through timed_search.py: as the
plain command runs it (search.workers=0: one one-thread process per core on CPU), then as one
process of all cores (search.workers=1) with the default pruner and with search.pruner=none on
the same grid and seeds. The first run's wall time is the goal, and its speed is printed as a
ratio to the one-process run's. The one-process runs hold every training in one process, so
their wall time splits into training, evaluation, complexity counting, data loading/preparation
and the rest (imports, model building, Optuna storage, result files), and their trials show
what the pruner saves. Goals: the default <= 300 s (600 at most); overhead outside training and
evaluation < 10%; peak RSS < 2 GiB (one process); pruning >= 40% fewer training images in the
search phase (the confirmation's extra seeds are not the pruner's to save) with the same best or
one within 0.5 points.

The pruning effect depends on the order the candidates come in (strong ones first let the
median prune more), so the unpruned run's accuracy curves are also replayed through the same
Optuna pruner in random orders: no training, the curves of a pruned trial are the prefixes of
its unpruned ones (training is deterministic).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import yaml

from common import compose
from search.pruning import make_pruner
from search.results.tables import search_images

HERE = Path(__file__).resolve().parent
QUICK = ["train.max_images=512", "data.synthetic_size=3000"]  # a smoke run of this script only


def run_search(runs_dir: Path, overrides: list[str]) -> tuple[float, dict, pd.DataFrame, dict]:
    """(wall seconds, timings, trials, best) of one search in a subprocess."""
    timings = runs_dir / "timings.json"
    cmd = [sys.executable, str(HERE / "timed_search.py"), str(timings), f"runs_dir={runs_dir}", "name=bench", *overrides]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    run = runs_dir / "bench"
    return wall, json.loads(timings.read_text()), pd.read_csv(run / "trials.csv"), yaml.safe_load((run / "best.yaml").read_text())


def split(wall: float, t: dict) -> dict:
    """Seconds per phase; `other` is whatever the timers did not cover."""
    phases = dict(
        training=t["train_call"] - t.get("evaluation", 0.0), evaluation=t.get("evaluation", 0.0),
        complexity=t["complexity"], data=t["data_loading"] + t.get("data_preparation", 0.0),
    )
    phases["other"] = wall - sum(phases.values())
    return phases


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="mobilenetv2")
    parser.add_argument("--quick", action="store_true", help="smaller data and epochs: checks the script, not the goals")
    args = parser.parse_args(argv)
    overrides = [f"base={args.base}", *(QUICK if args.quick else [])]
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        default_wall, _, _, default_best = run_search(Path(tmp) / "default", overrides)
        overrides.append("search.workers=1")
        wall, timings, trials, best = run_search(Path(tmp) / "pruned", overrides)
        wall_none, _, trials_none, best_none = run_search(Path(tmp) / "none", [*overrides, "search.pruner=none"])

    b = default_best
    print(f"# the default: python run_search.py {' '.join(overrides[:-1])}: {default_wall:.0f} s, "
          f"{wall / default_wall:.2f}x the speed of one process; best ({b['alpha']}, {b['beta']}, {b['gamma']}) "
          f"{b['score']:.4f} {b['verdict']}")
    print(f"\n# one process: python run_search.py {' '.join(overrides)}")
    phases = split(wall, timings)
    print(f"{'phase':12} {'seconds':>8} {'share':>6}")
    for name, seconds in phases.items():
        print(f"{name:12} {seconds:8.1f} {seconds / wall:6.1%}")
    print(f"{'wall':12} {wall:8.1f}")
    overhead = (wall - phases["training"] - phases["evaluation"]) / wall
    peak = timings["peak_rss_bytes"] / 2**30
    seeds = compose(*overrides).search.seeds
    saved = 1 - search_images(trials, seeds).sum() / search_images(trials_none, seeds).sum()
    saved_all = 1 - trials.images_seen.sum() / trials_none.images_seen.sum()
    gap = _score_of(trials_none, best) - best_none["score"]  # the pruned search's pick, trained without pruning
    print(f"\npeak resident memory {peak:.2f} GiB")
    print(f"{'pruner':8} {'trials':>6} {'pruned':>6} {'images':>8} {'wall s':>7}  best (alpha, beta, gamma) score")
    for name, t, b, w in (("median", trials, best, wall), ("none", trials_none, best_none, wall_none)):
        print(f"{name:8} {len(t):6} {(t.state == 'PRUNED').sum():6} {t.images_seen.sum():8} {w:7.0f}  "
              f"({b['alpha']}, {b['beta']}, {b['gamma']}) {b['score']:.4f}")
    print(f"pruning saves {saved:.0%} of the search phase's training images ({saved_all:.0%} with the confirmation's); "
          f"its best scores {gap * 100:+.2f} points against the unpruned best (both as trained without pruning)")
    orders = replay_orders(trials_none, overrides)
    print(f"replayed in {len(orders)} random candidate orders: saves {statistics.fmean(o[0] for o in orders):.0%} "
          f"on average (min {min(o[0] for o in orders):.0%}); best within 0.5 points in "
          f"{statistics.fmean(o[1] >= -0.005 for o in orders):.0%} of them")
    goals = {
        "default <= 300 s (600 at most)": "yes" if default_wall <= 300 else "within 600 s" if default_wall <= 600 else "NO",
        "overhead < 10%": overhead < 0.10,
        "peak RSS < 2 GiB": peak < 2,
        "pruning saves >= 40% images": saved >= 0.40,
        "pruned best within 0.5 points": gap >= -0.005,
    }
    print()
    for goal, met in goals.items():
        print(f"{goal:32} {met if isinstance(met, str) else 'yes' if met else 'NO'}")
    return dict(default_wall=default_wall, wall=wall, phases=phases, overhead=overhead, peak_gib=peak, saved=saved, gap=gap)


def replay(curves: list[list[float]], pruner, order: list[int]) -> tuple[float, float]:
    """(share of epochs saved, best's score minus the overall best) of the curves run in `order`."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    epochs, finals = len(curves[0]), {}
    trained = 0
    for i in order:
        trial = study.ask()
        for step, accuracy in enumerate(curves[i], 1):
            trial.report(accuracy, step)
            trained += 1
            if step < epochs and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, curves[i][-1])
            finals[i] = curves[i][-1]
    return 1 - trained / (epochs * len(curves)), max(finals.values()) - max(c[-1] for c in curves)


def replay_orders(trials_none: pd.DataFrame, overrides: list[str], n: int = 200) -> list[tuple[float, float]]:
    """replay() of the unpruned curves in `n` random orders, through the default config's pruner."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s, epochs = (cfg := compose(*overrides)).search, cfg.train.epochs
    curves = [yaml.safe_load(a)[0] for a in trials_none.sort_values("number").accuracies]
    rng = random.Random(0)
    return [
        replay(curves, make_pruner(s.pruner, s.pruner_startup_trials, epochs, s.pruner_warmup_epochs, s.pruner_min_agreement),
               rng.sample(range(len(curves)), len(curves)))
        for _ in range(n)
    ]


def _score_of(trials: pd.DataFrame, best: dict) -> float:
    """The score in `trials` of best.yaml's (alpha, beta, gamma)."""
    same = (trials[["alpha", "beta", "gamma"]] - [best["alpha"], best["beta"], best["gamma"]]).abs().max(axis=1) < 1e-9
    return float(trials.loc[same, "score"].iloc[0])


if __name__ == "__main__":
    main()
