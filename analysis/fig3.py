"""Paper Fig. 3: accuracy against FLOPs for width, depth and resolution scaling of one base.

    python -m analysis.fig3 runs/fig3-synthetic

Writes figures/fig3.{png,pdf} (three panels as in the paper), figures/fig3_cost.{png,pdf}
(accuracy against activations and latency) and tables/fig3.{csv,md}. The paper prints no table
of its Fig. 3 accuracies, so the side table gives, for context, the FLOPs each point has at
full size (ImageNet, 224 px x r), the paper's x-axis.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt

from analysis import common

PANELS = (("width", "w"), ("depth", "d"), ("resolution", "r"))
COLUMNS = ["series", "d", "w", "r", "resolution", "params", "flops", "activations", "latency_ms",
           "state", "seeds", "accuracy", "accuracy_std", "last_epoch_gain", "full_size_gflops"]


def table(points):
    out = points.assign(full_size_gflops=[
        round(common.full_size_gflops(p.base, p.d, p.w, p.r), 4) for p in points.itertuples()
    ])
    return out[COLUMNS]


def figure(points, title: str):
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True, constrained_layout=True)
    for ax, (series, coefficient) in zip(axes, PANELS):
        common.series_lines(ax, points[points.series == series], "flops", annotate=coefficient)
        common.flops_axis(ax)
        ax.set_title(f"scaling {series} ({coefficient})")
        if ax is not axes[0]:
            ax.set_ylabel("")
    fig.suptitle(title)
    return fig


def main(argv=None) -> int:
    args, config, points = common.load_run(__doc__.splitlines()[0], argv, "fig3")
    title = common.title_of(config, points, f"Fig. 3, scaling {points.base.iloc[0]} by one dimension")
    common.write_outputs(args.run_dir, "fig3", figure(points, title), common.cost_figure(points, title), table(points))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
