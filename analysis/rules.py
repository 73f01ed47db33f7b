"""Scaling rules at equal cost: accuracy, activations, latency, the Pareto front, and predictions.

    python -m analysis.rules runs/rules-efficientnet_b0-synthetic

For a run of conf/experiment/rules.yaml (series rule_<name>, models/rules.py). Writes
figures/rules.{png,pdf}: accuracy (mean and standard deviation over seeds) against measured FLOPs,
against forward latency (with the Pareto front over accuracy and latency) and against the memory a
training step of the run's batch holds (models.complexity.training_bytes); activations against
FLOPs on log-log axes with each rule's fitted slope beside the formula's. tables/rules.{csv,md}
has every point and whether it is on the front; tables/rules_laws.{csv,md} has each rule's law
(analysis/laws.py) fitted on its points up to 4x the base's FLOPs, predicting the larger points,
beside what was measured. figures/rules_cost.{png,pdf}: accuracy against activations and latency.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import common, laws
from models import make
from models.complexity import training_bytes
from models.rules import RULES

PREFIX = "rule_"
FIT_UP_TO = 4.5  # points up to this FLOPs ratio fit each rule's law; the larger ones are predicted
COLUMNS = ["rule", "measured_ratio", "d", "w", "r", "resolution", "flops", "activations", "latency_ms", "train_mb", "state",
           "accuracy", "accuracy_std", "last_epoch_gain", "pareto"]


def with_rules(points: pd.DataFrame) -> pd.DataFrame:
    return points.assign(rule=points.series.str.removeprefix(PREFIX))


def with_training_memory(points: pd.DataFrame, batch: int, optimizer: str) -> pd.DataFrame:
    """train_mb: what one training step of the run's batch holds (models.complexity.training_bytes), per network."""
    megabytes = {}
    for rec in points.drop_duplicates("key").itertuples():
        model = make(rec.base, rec.depth, rec.width, rec.variant, int(rec.num_classes), int(rec.in_channels))
        size = training_bytes(model, int(rec.resolution), batch, int(rec.in_channels), optimizer)
        megabytes[rec.key] = round(size / 2**20, 1)
    return points.assign(train_mb=points.key.map(megabytes))


def pareto(points: pd.DataFrame) -> pd.Series:
    """True where no other completed point is at least as accurate and at least as fast, and better in one."""
    done = common.completed(points).dropna(subset=["accuracy", "latency_ms"])
    acc, lat = done.accuracy.to_numpy(), done.latency_ms.to_numpy()
    dominated = [bool(np.any((acc >= a) & (lat <= t) & ((acc > a) | (lat < t)))) for a, t in zip(acc, lat)]
    return pd.Series(~np.array(dominated, dtype=bool), index=done.index).reindex(points.index, fill_value=False)


def activation_slopes(points: pd.DataFrame) -> dict[str, float]:
    """Each rule's slope of log(activations) against log(FLOPs), over all its points."""
    slopes = {}
    for rule, line in points.drop_duplicates(["rule", "key"]).groupby("rule", sort=False):
        if line.flops.nunique() >= 2:
            slopes[rule] = float(np.polyfit(np.log(line.flops), np.log(line.activations.astype(float)), 1)[0])
    return slopes


def predictions(points: pd.DataFrame) -> pd.DataFrame:
    """Per rule: its law fitted on points up to FIT_UP_TO, and each larger point predicted beside its measurement."""
    rows = []
    for rule, line in common.completed(points).groupby("rule", sort=False):
        small, large = line[line.measured_ratio <= FIT_UP_TO], line[line.measured_ratio > FIT_UP_TO]
        if small.measured_ratio.nunique() < 2 or large.empty:
            continue
        law = laws.choose(small.measured_ratio.to_numpy(), small.accuracy.to_numpy())
        for rec in large.itertuples():
            predicted = float(law.predict(rec.measured_ratio))
            rows.append(dict(rule=rule, law=law.name, fitted_on=len(small), measured_ratio=rec.measured_ratio,
                             accuracy=rec.accuracy, accuracy_std=rec.accuracy_std, predicted=round(predicted, 2),
                             error=round(predicted - rec.accuracy, 2)))
    return pd.DataFrame(rows, columns=["rule", "law", "fitted_on", "measured_ratio", "accuracy", "accuracy_std",
                                       "predicted", "error"])


def figure(points: pd.DataFrame, title: str, batch: int):
    fig, (by_flops, by_latency, by_memory, acts) = plt.subplots(1, 4, figsize=(21, 4.6), constrained_layout=True)
    slopes = activation_slopes(points)
    done = common.completed(points)
    for rule in dict.fromkeys(points.rule):
        line = done[done.rule == rule].sort_values("flops")
        for ax, x in ((by_flops, "flops"), (by_latency, "latency_ms"), (by_memory, "train_mb")):
            ax.errorbar(line[x], line.accuracy, yerr=line.accuracy_std.fillna(0), marker="o", capsize=3, label=rule)
        every = points[points.rule == rule].drop_duplicates("key").sort_values("flops")
        formula = RULES[rule].activation_slope if rule in RULES else float("nan")
        acts.plot(every.flops, every.activations, marker="o",
                  label=f"{rule}: slope {slopes.get(rule, float('nan')):.2f} (formula {formula:.2f})")
    front = done[done.pareto].sort_values("latency_ms")
    by_latency.plot(front.latency_ms, front.accuracy, color="0.2", linestyle=":", zorder=0, label="Pareto front")
    for ax, x in ((by_flops, "flops"), (by_latency, "latency_ms"), (by_memory, "train_mb")):
        ax.set_xscale("log")  # before flops_axis: a log scale brings its own tick labels
        common.flops_axis(ax, x)
        ax.legend(fontsize=7)
    by_memory.set_xlabel(f"training memory (MB at batch {batch}: weights, gradients, optimizer state, saved activations)",
                         fontsize=8)
    acts.set_xscale("log")
    acts.set_yscale("log")
    acts.set_xlabel("FLOPs (multiply-adds, measured)")
    acts.set_ylabel("activations (fvcore)")
    acts.grid(alpha=0.3, which="both")
    acts.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def main(argv=None) -> int:
    args, config, points = common.load_run(__doc__.splitlines()[0], argv, "rules")
    batch, optimizer = int(config["train"]["batch_size"]), config["train"].get("optimizer", "sgd")  # older runs: SGD
    points = with_training_memory(with_rules(points), batch, optimizer)
    points["pareto"] = pareto(points)
    rows = points[COLUMNS].sort_values(["rule", "measured_ratio"], kind="stable")
    laws_table = predictions(points)
    shown = rows[["rule", "measured_ratio", "accuracy", "accuracy_std", "latency_ms", "train_mb", "pareto"]]
    print(common.to_markdown(common.with_plus_minus(shown)))
    print(common.to_markdown(common.with_plus_minus(laws_table)))
    title = common.title_of(config, points, f"Scaling rules on {points.base.iloc[0]}")
    common.write_outputs(args.run_dir, "rules", figure(points, title, batch), common.cost_figure(points, title), rows)
    print("\n".join(map(str, common.write_table(laws_table, args.run_dir, "rules_laws"))))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
