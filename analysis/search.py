"""Scaling curves of a search: every candidate's accuracy against FLOPs, the alpha-beta map,
and Optuna's own history and parameter-importance plots.

    python -m analysis.search runs/mobilenetv2-synthetic

Writes figures/search.{png,pdf} (left: accuracy vs measured FLOPs, completed / pruned / failed
marked; right: alpha-beta map coloured by score, gamma implied by alpha * beta^2 * gamma^2 ~= 2
and printed beside each point; the best point starred), figures/optuna_history.{png,pdf},
figures/optuna_importance.{png,pdf} (when at least two trials completed) and tables/search.{csv,md}.
"""

from __future__ import annotations

import sys
import warnings

import matplotlib.pyplot as plt
import optuna
import pandas as pd
from matplotlib.transforms import blended_transform_factory
from omegaconf import OmegaConf

from analysis import common
from search.record import SEARCH_SERIES
from search.storage import make_storage, unredact

COLUMNS = ["alpha", "beta", "gamma", "d", "w", "r", "resolution", "flops", "measured_ratio", "kept", "state",
           "accuracy", "accuracy_std", "last_epoch_gain", "images_seen"]


def load_study(run_dir, config: dict) -> optuna.Study:
    cfg = unredact(OmegaConf.create(config))  # config.yaml never holds the password
    return optuna.load_study(study_name=config["name"], storage=make_storage(cfg, run_dir))


def with_pruned_accuracy(points: pd.DataFrame, study: optuna.Study) -> pd.DataFrame:
    """Pruned trials have no score: use the last accuracy they reported to the pruner."""
    last = {t.number: t.intermediate_values[max(t.intermediate_values)]
            for t in study.get_trials(deepcopy=False) if t.intermediate_values}
    pruned = points.state == "PRUNED"
    points.loc[pruned, "accuracy"] = [100 * last.get(int(n), float("nan")) for n in points.loc[pruned, "number"]]
    return points


def figure(points: pd.DataFrame, title: str):
    fig, (curve, grid) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    kept = points[points.kept]
    styles = {"COMPLETE": dict(marker="o", color="tab:blue"),
              "PRUNED": dict(marker="o", facecolors="none", edgecolors="tab:orange")}
    for state, style in styles.items():
        sel = kept[kept.state == state]
        label = "completed" if state == "COMPLETE" else "pruned (last reported accuracy)"
        curve.scatter(sel.flops, sel.accuracy, s=45, label=f"{label}: {len(sel)}", **style)
    failed = kept[kept.state == "FAIL"]
    bottom = blended_transform_factory(curve.transData, curve.transAxes)
    curve.scatter(failed.flops, [0.03] * len(failed), marker="x", color="tab:red", transform=bottom,
                  label=f"failed (no score): {len(failed)}")
    common.flops_axis(curve)
    curve.legend(fontsize=8)
    curve.set_title("kept candidates (FLOPs ratio within the filter)", fontsize=10)

    dropped = points[~points.kept]
    grid.scatter(dropped.alpha, dropped.beta, s=12, color="0.8", label="outside the FLOPs filter")
    scored = kept[kept.accuracy.notna()]
    dots = grid.scatter(scored.alpha, scored.beta, c=scored.accuracy, cmap="viridis", s=70, edgecolors="k")
    for rec in kept.itertuples():
        grid.annotate(f"γ={rec.gamma:g}", (rec.alpha, rec.beta), textcoords="offset points", xytext=(5, 4), fontsize=7)
    done = kept[kept.state == "COMPLETE"]
    if not done.empty:
        best = done.loc[done.accuracy.idxmax()]
        grid.scatter([best.alpha], [best.beta], marker="*", s=320, facecolors="none", edgecolors="tab:red",
                     linewidths=1.5, label=f"best: α={best.alpha:g} β={best.beta:g} γ={best.gamma:g}")
    fig.colorbar(dots, ax=grid, label=common.ACCURACY)
    grid.set_xlabel("alpha (depth coefficient)")
    grid.set_ylabel("beta (width coefficient)")
    grid.set_title("alpha-beta map (gamma implied by the constraint)", fontsize=10)
    grid.grid(alpha=0.3)
    grid.margins(0.12)
    grid.legend(fontsize=8, loc="upper right")
    fig.suptitle(title)
    return fig


def optuna_figures(study: optuna.Study, run_dir) -> list:
    """Optuna's matplotlib history and importance plots (importance needs two completed trials)."""
    from optuna.visualization import matplotlib as ovm

    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        written += common.save_figure(ovm.plot_optimization_history(study).figure, run_dir, "optuna_history")
        if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= 2:
            try:
                ax = ovm.plot_param_importances(study)
            except (ValueError, RuntimeError) as e:  # e.g. every completed trial has the same params
                print(f"no parameter-importance plot: {e}")
            else:
                ax.figure.set_size_inches(7, 3.5)
                ax.figure.tight_layout()
                written += common.save_figure(ax.figure, run_dir, "optuna_importance")
    return written


def main(argv=None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    config = common.load_config(args.run_dir)
    points = common.load_points(args.run_dir)
    if not points.series.isin(SEARCH_SERIES).all():
        raise common.RunError(f"{args.run_dir} is an experiment, not a search: use its analysis.fig*/table3 script")
    study = load_study(args.run_dir, config)
    points = with_pruned_accuracy(points, study)
    title = common.title_of(config, points, f"search on {config['base']['name']}")
    written = common.save_figure(figure(points, title), args.run_dir, "search")
    written += optuna_figures(study, args.run_dir)
    rows = points[COLUMNS].sort_values(["kept", "accuracy"], ascending=False)
    written += common.write_table(rows, args.run_dir, "search")
    print("\n".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
