"""Paper Fig. 8: depth, width, resolution and compound scaling of one base at equal FLOPs.

    python -m analysis.fig8 runs/fig8-synthetic

Writes figures/fig8.{png,pdf}: our proxy accuracy against measured FLOPs (left) beside the
paper's ImageNet top-1 of its compound family EfficientNet-B0..B7 against published FLOPs
(right; the paper tabulates no single-dimension numbers), figures/fig8_cost.{png,pdf}, and
tables/fig8.{csv,md} with each solved point's FLOPs target and how far it landed from it.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd

from analysis import common
from models.reference import EFFICIENTNET_PAPER_GFLOPS, EFFICIENTNET_TOP1

ORDER = ["compound", "depth", "width", "resolution"]
COLUMNS = ["series", "phi", "d", "w", "r", "resolution", "flops", "target_flops", "target_error_pct",
           "activations", "latency_ms", "state", "seeds", "accuracy", "accuracy_std", "last_epoch_gain"]


def table(points) -> pd.DataFrame:
    error = 100 * (points.flops / points.target_flops - 1)
    target = points.target_flops.round().astype("Int64")
    return points.assign(target_flops=target, target_error_pct=error.round(2))[COLUMNS]


def paper_family() -> pd.DataFrame:
    """EfficientNet-B0..B7: GFLOPs and ImageNet top-1 as the paper prints them (Table 2, native resolutions)."""
    names = list(EFFICIENTNET_TOP1)
    return pd.DataFrame(dict(
        model=[n.replace("efficientnet_", "").upper() for n in names],
        gflops=[EFFICIENTNET_PAPER_GFLOPS[n] for n in names], top1=[EFFICIENTNET_TOP1[n] for n in names],
    ))


def figure(points, title: str):
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True,
                                      gridspec_kw=dict(width_ratios=[3, 2]))
    order = [s for s in ORDER if s in set(points.series)] + sorted(set(points.series) - set(ORDER))
    common.series_lines(ours, points, "flops", order=order)
    common.flops_axis(ours)
    ours.legend(title="scaling", fontsize=8)
    ours.set_title("ours: proxy task, FLOPs-matched points", fontsize=10)

    family = paper_family()
    paper.plot(family.gflops, family.top1, marker="s", color="tab:blue", label="compound (EfficientNet-B0..B7)")
    for rec in family.itertuples():
        paper.annotate(rec.model, (rec.gflops, rec.top1), textcoords="offset points", xytext=(4, -10), fontsize=7)
    paper.set_xscale("log")
    paper.set_xlabel("FLOPs (billions of multiply-adds, published)")
    paper.set_ylabel("ImageNet top-1 accuracy (%, published)")
    paper.set_title("paper: ImageNet (Table 2)", fontsize=10)
    paper.grid(alpha=0.3)
    paper.legend(fontsize=8)
    fig.suptitle(title)
    return fig


def main(argv=None) -> int:
    args, config, points = common.load_run(__doc__.splitlines()[0], argv, "fig8")
    title = common.title_of(config, points, f"Fig. 8, scaling {points.base.iloc[0]} four ways")
    common.write_outputs(args.run_dir, "fig8", figure(points, title), common.cost_figure(points, title), table(points))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
