"""Paper Table 3: single-dimension vs compound scaling of MobileNetV1, MobileNetV2 and ResNet-50.

    python -m analysis.table3 runs/table3-synthetic

Writes tables/table3.{csv,md}: per base and method, our proxy's (d, w, r), measured FLOPs and
accuracy, the same scaling's FLOPs at full size (ImageNet, native resolution x r), and the
paper's published GFLOPs and ImageNet top-1 in separate columns; and figures/table3.{png,pdf}
(accuracy against FLOPs, one panel per base) with figures/table3_cost.{png,pdf}.
Series are named <base>_<method>, as conf/experiment/table3.yaml defines them.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd

from analysis import common
from models.reference import PAPER_TABLE3

METHODS = ["baseline", "depth", "width", "resolution", "compound"]
COLUMNS = ["base", "method", "d", "w", "r", "resolution", "params", "flops", "flops_ratio", "activations",
           "latency_ms", "state", "seeds", "accuracy", "accuracy_std", "last_epoch_gain", "full_size_gflops", "paper_gflops", "paper_top1"]


def with_methods(points: pd.DataFrame) -> pd.DataFrame:
    """Split each series name <base>_<method> into its base and method."""
    method = [s.removeprefix(f"{b}_") for s, b in zip(points.series, points.base)]
    return points.assign(method=method)


def table(points: pd.DataFrame) -> pd.DataFrame:
    points = with_methods(points)
    paper = pd.DataFrame(PAPER_TABLE3)[["base", "method", "gflops", "top1"]]
    paper = paper.rename(columns={"gflops": "paper_gflops", "top1": "paper_top1"})
    baseline_flops = points[points.method == "baseline"].set_index("base").flops
    out = points.merge(paper, on=["base", "method"], how="left").assign(
        flops_ratio=lambda t: (t.flops / t.base.map(baseline_flops)).round(3),
        full_size_gflops=lambda t: [round(common.full_size_gflops(p.base, p.d, p.w, p.r), 3) for p in t.itertuples()],
        _order=lambda t: t.method.map({m: i for i, m in enumerate(METHODS)}),
    )
    bases = list(dict.fromkeys(points.base))
    out["_base"] = out.base.map({b: i for i, b in enumerate(bases)})
    return out.sort_values(["_base", "_order"])[COLUMNS].reset_index(drop=True)


STYLE = {  # one look per method in every panel; the legend replaces labels that could overlap
    "baseline": dict(marker="o", color="0.4"), "depth": dict(marker="^", color="tab:orange"),
    "width": dict(marker="s", color="tab:green"), "resolution": dict(marker="D", color="tab:purple"),
    "compound": dict(marker="*", color="tab:red", s=220),
}


def figure(rows: pd.DataFrame, title: str):
    bases = list(dict.fromkeys(rows.base))
    fig, axes = plt.subplots(1, len(bases), figsize=(4.3 * len(bases), 4.4), constrained_layout=True, squeeze=False)
    for ax, base in zip(axes[0], bases):
        mine = rows[(rows.base == base) & (rows.state == "COMPLETE")]
        for method, style in STYLE.items():
            sel = mine[mine.method == method]
            ax.errorbar(sel.flops, sel.accuracy, yerr=sel.accuracy_std.fillna(0), fmt="none", ecolor=style["color"],
                        capsize=3, zorder=2)
            ax.scatter(sel.flops, sel.accuracy, zorder=3, label=method, **{"s": 60, **style})
        common.flops_axis(ax)
        ax.set_title(base, fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(STYLE), fontsize=9)
    fig.suptitle(title)
    return fig


def main(argv=None) -> int:
    args, config, points = common.load_run(__doc__.splitlines()[0], argv, "table3")
    rows = table(points)
    print(common.to_markdown(common.with_plus_minus(
        rows[["base", "method", "flops_ratio", "accuracy", "accuracy_std", "last_epoch_gain", "paper_gflops", "paper_top1"]])))
    title = common.title_of(config, points, "Table 3, single-dimension vs compound scaling")
    common.write_outputs(args.run_dir, "table3", figure(rows, title), common.cost_figure(points, title), rows)
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
