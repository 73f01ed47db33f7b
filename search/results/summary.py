"""What a run prints in the terminal: the planned candidates before training, the results after."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def print_plan(table: pd.DataFrame, kept: int, cfg, run_dir: Path) -> None:
    """The candidate table and one line on how many will be trained."""
    print(table.drop(columns=["key", "base", "variant", "num_classes", "in_channels"]).to_string(index=False))
    if cfg.series:
        print(f"{kept} distinct points in {len(cfg.series)} series; candidates.csv in {run_dir}")
    else:
        print(f"{kept} of {len(table)} grid points kept (measured FLOPs ratio within "
              f"{cfg.search.flops_tolerance:.0%} of {cfg.search.target}); candidates.csv in {run_dir}")


def margin_sentence(best: dict, run_dir: Path) -> str:
    """One plain sentence on how sure best.yaml's pick is (its `verdict`)."""
    verdict, check = best["verdict"], f"python -m search.fidelity {run_dir}"
    if verdict == "no_runner_up":
        return "Only one candidate completed: there is no runner-up to compare the best with."
    lead = f"The best candidate leads the runner-up (trial {best['runner_up_trial']})"
    lead += "" if best["margin"] is None else f" by {100 * best['margin']:.1f} points"
    if verdict == "no_noise_estimate":
        return f"{lead}; with one seed per candidate there is no noise estimate: run with search.seeds=3 or {check}"
    se = f"{100 * best['margin_noise']:.1f} points"
    if verdict == "separable":
        return f"{lead}, more than twice the standard error of that difference over seeds ({se}): beyond seed noise."
    return f"{lead}, within twice its standard error over seeds ({se}): seed noise could explain it; {check} tells more."


def print_results(trials: pd.DataFrame, params: list[str], best, run_dir: Path, seconds: float) -> None:
    """The trials sorted by score, the best candidate, and where the results are."""
    shown = trials[trials.state != "FAIL"].copy()
    shown["score"] = pd.to_numeric(shown["score"], errors="coerce")
    shown = shown.sort_values("score", ascending=False, na_position="last")
    columns = ["number", "state", "series", *params, "resolution", "measured_ratio", "score", "images_seen"]
    print(shown[columns].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if best is not None:
        print(f"best: alpha={best['alpha']} beta={best['beta']} gamma={best['gamma']} "
              f"score={best['score']:.4f} -> {run_dir / 'best.yaml'}")
        print(margin_sentence(best, run_dir))
    print(f"done in {seconds:.0f} s; results in {run_dir}")
