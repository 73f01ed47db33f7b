"""The share space against the grid at an equal training budget: the best score each finds, and the
images trained to find it.

    python bench/shares_vs_grid.py [--runs-dir /tmp/shares-vs-grid] [-- HYDRA_OVERRIDES...]

Runs `python run_search.py` (plus the overrides; the default base is mobilenetv2) twice, in fresh
folders under --runs-dir: the grid (search.space=grid), then the share search with search.trials set
to the number of networks the grid trained, so both train as many networks with the same proxy
training, pruner and seeds. Prints one row per space: networks trained, proposals the sampler made,
the best candidate and its score (mean +- std over search.seeds), the images trained until it was
found and in all, and wall time. Both runs resume if interrupted (same --runs-dir). With one seed
per network the scores carry no noise estimate: pass search.seeds=3 to see whether the difference
between the two bests is more than seed noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evidence import cpu_model, step  # noqa: E402


def trained(run_dir: Path) -> pd.DataFrame:
    """The trials that trained a network (a share search's repeats and off-target proposals did not)."""
    trials = pd.read_csv(run_dir / "trials.csv")
    return trials[trials.duplicate_of.isna() & (pd.to_numeric(trials.images_seen, errors="coerce") > 0)]


def row(space: str, run_dir: Path, seconds: float) -> dict:
    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    proposals = len(pd.read_csv(run_dir / "trials.csv"))
    return {
        "space": space, "networks": len(trained(run_dir)), "proposals": proposals,
        "best (alpha, beta, gamma)": f"({best['alpha']:g}, {best['beta']:g}, {best['gamma']:g})",
        "px": best["proxy"]["resolution"],
        "best score": f"{best['score']:.3f} ± {best['score_std']:.3f}",
        "images to best": best["images_to_best"], "images in all": best["images_total"], "seconds": round(seconds),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/shares-vs-grid"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both searches (after --)")
    args = parser.parse_args(argv)
    common = [sys.executable, "run_search.py", "base=mobilenetv2", f"runs_dir={args.runs_dir}", *args.overrides]
    start = time.strftime("%Y-%m-%d")
    grid_dir, shares_dir = args.runs_dir / "grid", args.runs_dir / "shares"
    grid_seconds = step([*common, "name=grid", "search.space=grid"])
    budget = len(trained(grid_dir))
    shares_seconds = step([*common, "name=shares", "search.space=shares", f"search.trials={budget}"])
    table = pd.DataFrame([row("grid", grid_dir, grid_seconds), row("shares", shares_dir, shares_seconds)])
    print(f"\n{start}, {cpu_model()}; overrides: {' '.join(args.overrides) or '(none)'}")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
