"""A compound family, paper-style Table 2: phi, d, w, r, resolution, params, FLOPs, activations.

    python -m analysis.family runs/family-mobilenetv2-synthetic

From an experiment=family run: tables/family.{csv,md} list the full-size network (ImageNet,
native resolution, 1000 classes) of each phi with the proxy's measured cost and score beside
it, and figures/family.{png,pdf} plot the proxy's accuracy against its FLOPs.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import pandas as pd

from analysis import common
from search.results import family_table

PROXY = ["phi", "resolution", "params", "flops", "activations", "state", "accuracy"]


def table(points: pd.DataFrame) -> pd.DataFrame:
    members = points.sort_values("phi")
    first = members.iloc[0]
    alpha, beta, gamma = (float(first[k]) for k in ("alpha", "beta", "gamma"))
    phis = [round(p, 6) for p in members.phi]
    full = pd.DataFrame(family_table(first.base, alpha, beta, gamma, sorted(set(phis))))
    full = full.rename(columns={"params": "params_full", "flops": "flops_full",
                                                    "activations": "activations_full", "resolution": "resolution_full"})
    proxy = members[PROXY].rename(columns={c: f"{c}_proxy" for c in PROXY if c != "phi"})
    return full.merge(proxy, on="phi", how="left").assign(alpha=alpha, beta=beta, gamma=gamma)


def figure(points: pd.DataFrame, title: str):
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    common.series_lines(ax, points, "flops", annotate="phi")
    common.flops_axis(ax)
    ax.set_title(title, fontsize=10)
    return fig


def main(argv=None) -> int:
    args = common.parse_args(__doc__.splitlines()[0], argv)
    config = common.load_config(args.run_dir)
    points = common.load_points(args.run_dir)
    common.check_kind(points, args.run_dir, "family")
    points = points[points.phi.notna() & points.alpha.notna()]  # compound members (solved points copy phi)
    if points.empty:
        raise common.RunError(f"{args.run_dir} has no compound points (phi): run it with experiment=family")
    rows = table(points)
    title = common.title_of(config, points, f"compound family of {points.base.iloc[0]}")
    written = common.save_figure(figure(points, title), args.run_dir, "family")
    written += common.write_table(rows, args.run_dir, "family")
    print(common.to_markdown(rows))
    print("\n".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(common.main_guard(main))
