"""What every analysis script shares: reading a run, its latency (analysis.latency), writing figures and tables.

A run folder holds candidates.csv (one row per series point, or per grid point) and trials.csv
(one row per Optuna trial). `load_points` joins them on the candidate key: a point shared by
several series (every Fig. 3 line starts at the base) is trained once and appears in each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the scripts run on headless machines and in CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from analysis.latency import measure_latency  # noqa: E402
from models import native_resolution, scaled_resolution  # noqa: E402
from models.complexity import multiply_adds  # noqa: E402
from models.rules import RULES  # noqa: E402
from search.evidence import last_epoch_gain, seed_std  # noqa: E402
from search.results.files import replace_atomic, write_atomic  # noqa: E402
from search.results.tables import seed_list  # noqa: E402
from search.config import ConfigError  # noqa: E402
from search.validate import use_own_bases  # noqa: E402
from search.record import SEARCH_SERIES  # noqa: E402

RESULT_FIELDS = ["number", "state", "score", "seed_scores", "accuracies", "images_seen", "train_seconds",
                 "eval_seconds", "failure"]
STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "RUNNING": 3, "WAITING": 4}
ACCURACY = "proxy top-1 accuracy (%)"


class RunError(ValueError):
    """A run folder the analysis cannot use; the message says what is missing."""


def load_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} has no config.yaml: is it a folder written by run_search.py?")
    config = yaml.safe_load(path.read_text())
    use_own_bases(config)  # bases given as stage tables or builders: known by name from here on
    return config


def load_points(run_dir: Path) -> pd.DataFrame:
    """candidates.csv with each point's result: its best-settled trial (complete over pruned over failed)."""
    run_dir = Path(run_dir)
    path = run_dir / "candidates.csv"
    if not path.is_file():
        raise RunError(f"{run_dir} has no candidates.csv: run `python run_search.py ...` for it first")
    points = pd.read_csv(path)
    trials_path = run_dir / "trials.csv"
    trials = pd.read_csv(trials_path) if trials_path.is_file() else pd.DataFrame(columns=["key", *RESULT_FIELDS])
    trials = trials.assign(_order=trials.state.map(STATE_ORDER)).sort_values(["_order", "number"])
    results = trials.drop_duplicates("key")[["key", *RESULT_FIELDS]]
    points = points.merge(results, on="key", how="left")
    points["state"] = points["state"].fillna("NOT RUN")
    points["accuracy"] = 100 * pd.to_numeric(points["score"], errors="coerce")
    points["seeds"] = points.seed_scores.map(lambda v: len(seed_list(v)))
    # The sample std over seeds, from the seeds themselves: runs recorded before 2026-11-24 kept a
    # population std in score_std. NaN with a single seed, which measures no noise.
    points["accuracy_std"] = points.seed_scores.map(lambda v: 100 * seed_std(seed_list(v)))
    # Points the last epoch still lifted by more than their seed std were cut short by the budget.
    gain = [100 * last_epoch_gain(seed_list(a)) if state == "COMPLETE" else float("nan")
            for a, state in zip(points.accuracies, points.state)]
    points["last_epoch_gain"] = pd.Series(gain, index=points.index).round(2)
    return points.drop(columns=["seed_scores", "accuracies"])


def completed(points: pd.DataFrame) -> pd.DataFrame:
    return points[points.state == "COMPLETE"]


def full_size_gflops(base: str, d: float, w: float, r: float) -> float:
    """GFLOPs of the full-size ImageNet network at this scaling (what the paper's axes show)."""
    resolution = scaled_resolution(native_resolution(base), r)  # half up, as the model code rounds
    return multiply_adds(base, d, w, resolution) / 1e9


def series_lines(ax, points: pd.DataFrame, x: str, label_of=None, annotate: str | None = None, order=None) -> None:
    """One line per series of accuracy against column `x`; failed or unrun points are left out."""
    done = completed(points)
    for name in order or list(dict.fromkeys(points.series)):
        line = done[done.series == name].sort_values(x)
        if line.empty:
            continue
        ax.errorbar(line[x], line.accuracy, yerr=line.accuracy_std.fillna(0), marker="o", capsize=3,
                    label=label_of(name) if label_of else name)
        if annotate:
            places = label_places(list(line[x]), list(line.accuracy))
            for rec, (side, above) in zip(line.itertuples(), places):
                ax.annotate(f"{annotate}={getattr(rec, annotate):g}", (getattr(rec, x), rec.accuracy),
                            textcoords="offset points", xytext=(4 * side, 6 if above else -11),
                            ha="left" if side > 0 else "right", fontsize=7, color="0.3")


def label_places(xs: list[float], ys: list[float]) -> list[tuple[int, bool]]:
    """Where each point of a line (sorted by x) gets its label, clear of its neighbours' points and of
    the line: (side, above), side +1 right or -1 left. The label goes to the side with the wider gap to
    the next point, and above the line segment there when that segment falls, below when it rises."""
    places = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        left = x - xs[i - 1] if i > 0 else float("inf")
        right = xs[i + 1] - x if i + 1 < len(xs) else float("inf")
        side = 1 if right >= left else -1
        neighbour = i + side if 0 <= i + side < len(xs) else i - side
        places.append((side, not 0 <= neighbour < len(xs) or ys[neighbour] <= y))
    return places


def flops_axis(ax, column: str = "flops") -> None:
    labels = {"flops": "FLOPs (millions of multiply-adds, measured)", "activations": "activations (millions)",
              "latency_ms": "forward latency (ms, batch 1; CPU: 1 thread)",
              "train_mb": "training memory (MB: weights, gradients, optimizer state, saved activations)"}
    ax.set_xlabel(labels[column])
    ax.set_ylabel(ACCURACY)
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.1)  # room for the point labels at the ends
    if column in ("flops", "activations"):
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e6:g}"))
    if column == "train_mb":  # a log axis over one decade: plain numbers, no crowded minor labels
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def cost_figure(points: pd.DataFrame, title: str, label_of=None, order=None):
    """Accuracy against activations and against measured latency: two panels, one line per series."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, column in zip(axes, ("activations", "latency_ms")):
        series_lines(ax, points, column, label_of, order=order)
        flops_axis(ax, column)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def save_figure(fig, run_dir: Path, name: str) -> list[Path]:
    """figures/<name>.png and .pdf in the run folder."""
    folder = Path(run_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "pdf")]
    try:
        for path in paths:  # atomic: an interrupted script leaves the old figure, never half a file
            replace_atomic(path, lambda tmp, ext=path.suffix[1:]: fig.savefig(tmp, dpi=150, format=ext))
    finally:
        plt.close(fig)
    return paths


def plain_cell(value, column: str) -> str:
    """A table cell: empty where missing, floats with 4 significant digits."""
    if pd.isna(value):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def with_plus_minus(table: pd.DataFrame) -> pd.DataFrame:
    """The accuracy column as "mean ± std" text (one decimal), accuracy_std dropped: a table to read."""
    if not {"accuracy", "accuracy_std"} <= set(table.columns):
        return table
    text = [("" if pd.isna(a) else f"{a:.1f}" + ("" if pd.isna(s) else f" ± {s:.1f}"))
            for a, s in zip(table.accuracy, table.accuracy_std)]
    return table.assign(accuracy=text).drop(columns=["accuracy_std"])


def to_markdown(table: pd.DataFrame, cell=plain_cell) -> str:
    """A GitHub Markdown table (no extra dependency); each value written by `cell(value, column)`."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v, c) for c, v in zip(table.columns, row)) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, run_dir: Path, name: str) -> list[Path]:
    """tables/<name>.csv and .md in the run folder."""
    folder = Path(run_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    csv, md = folder / f"{name}.csv", folder / f"{name}.md"
    replace_atomic(csv, lambda tmp: table.to_csv(tmp, index=False))
    write_atomic(md, to_markdown(with_plus_minus(table)))
    return [csv, md]


def parse_args(description: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("run_dir", type=Path, help="a run folder written by run_search.py (runs/<name>)")
    parser.add_argument("--device", default="cpu", help="device for the latency measurement (cpu, cuda)")
    parser.add_argument("--no-latency", action="store_true", help="skip measuring forward latency")
    return parser.parse_args(argv)


def with_latency(points: pd.DataFrame, args) -> pd.DataFrame:
    if args.no_latency:
        return points.assign(latency_ms=float("nan"))
    return measure_latency(points, args.run_dir, args.device)


# The series an experiment's run must have for each script (any one of them), and what to use otherwise
NEEDS = {"fig3": {"width", "depth", "resolution"}, "fig8": {"compound"}, "fig4": set(), "family": set(),
         "table3": set(),  # table3: series named <base>_<method>, one of them <base>_baseline (checked apart)
         "rules": {f"rule_{name}" for name in RULES}}


def script_for(series: set) -> str:
    """The analysis script that fits a run with these series names."""
    if series <= set(SEARCH_SERIES):
        return "analysis.search"
    if series & NEEDS["rules"]:
        return "analysis.rules"
    if "compound" in series and series & {"depth", "width", "resolution"}:
        return "analysis.fig8"
    if series & {"width", "depth", "resolution"}:
        return "analysis.fig3"
    if any(s.endswith("_baseline") for s in series):
        return "analysis.table3"
    if "family" in series:
        return "analysis.family"
    return "analysis.fig4"


def check_kind(points: pd.DataFrame, run_dir: Path, script: str) -> None:
    """Raise RunError naming the script that fits when `run_dir` is a run of another kind."""
    series = set(points.series.astype(str))
    needs = NEEDS[script]
    if series <= set(SEARCH_SERIES):
        fits = False
    elif script == "table3":
        fits = any(s.endswith("_baseline") for s in series)
    else:
        fits = not needs or bool(series & needs)
    if not fits:
        what = "a search" if series <= set(SEARCH_SERIES) else f"a run with series {', '.join(sorted(series))}"
        raise RunError(f"{run_dir} is {what}, not a {script} run: use python -m {script_for(series)} {run_dir}")


def load_run(description: str, argv=None, script: str | None = None):
    """(args, config, points with latency) of the run folder named on the command line.

    With `script`, a run of another kind is refused before anything (latency.csv) is written.
    """
    args = parse_args(description, argv)
    config, points = load_config(args.run_dir), load_points(args.run_dir)
    if script:
        check_kind(points, args.run_dir, script)
    return args, config, with_latency(points, args)


def write_outputs(run_dir: Path, name: str, figure, cost, table: pd.DataFrame) -> list[Path]:
    """figures/<name>, figures/<name>_cost and tables/<name>; prints what was written."""
    written = save_figure(figure, run_dir, name) + save_figure(cost, run_dir, f"{name}_cost")
    written += write_table(table, run_dir, name)
    print("\n".join(map(str, written)))
    return written


def title_of(config: dict, points: pd.DataFrame, what: str) -> str:
    """A figure's title: what it shows, the data with its chance level (1 / classes), the budget and seeds."""
    data, train = config["data"]["name"], config["train"]
    data += f", chance {100 / points.num_classes.iloc[0]:.3g}%"
    epochs = train["epochs"]
    budget = f"{epochs} epoch{'s' * (epochs != 1)}" + (f" x {train['max_images']} images" if train.get("max_images") else "")
    seeds = config.get("search", {}).get("seeds", 1)
    budget += f", mean ± std over {seeds} seeds" if seeds > 1 else ", 1 seed"
    return f"{what}: proxy on {data} ({budget})"


def main_guard(fn, argv=None) -> int:
    """Run an analysis main; a bad run folder gets one line and exit code 2."""
    try:
        return fn(argv)
    except (RunError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
