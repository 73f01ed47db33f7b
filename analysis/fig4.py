"""Paper Fig. 4: width scaling from several (depth, resolution) baselines.

    python -m analysis.fig4 runs/fig4-synthetic

Writes figures/fig4.{png,pdf}, figures/fig4_cost.{png,pdf} and tables/fig4.{csv,md}. The
paper's point: at the same FLOPs, widening a deeper and higher-resolution network wins.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt

from analysis import common
from analysis.fig3 import table


def labels(points) -> dict[str, str]:
    """Legend text of each series from its own points: 'd=2, r=1.3'."""
    first = points.drop_duplicates("series").set_index("series")
    return {s: f"d={first.d[s]:g}, r={first.r[s]:g}" for s in first.index}


def figure(points, title: str):
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    common.series_lines(ax, points, "flops", label_of=labels(points).get)  # four lines: labels would collide
    common.flops_axis(ax)
    widths = ", ".join(f"{w:g}" for w in sorted(set(points.w)))
    ax.legend(title=f"baseline; w = {widths}\nleft to right on each line", fontsize=8, title_fontsize=8)
    ax.set_title(title.replace(": ", ":\n", 1), fontsize=10)  # one panel: too narrow for the title on one line
    return fig


def main(argv=None) -> int:
    args, config, points = common.load_run(__doc__.splitlines()[0], argv, "fig4")
    title = common.title_of(config, points, f"Fig. 4, width scaling of {points.base.iloc[0]}")
    cost = common.cost_figure(points, title, labels(points).get)
    common.write_outputs(args.run_dir, "fig4", figure(points, title), cost, table(points))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
