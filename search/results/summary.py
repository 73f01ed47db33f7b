"""What a run prints in the terminal: the planned candidates before training, the results after."""

from __future__ import annotations

import math
import shutil
import textwrap
from pathlib import Path

import pandas as pd

from search.results.tables import seed_list

PLAN_ROWS = 30  # the most candidates print_plan lists; candidates.csv has them all


def as_text(table: pd.DataFrame, formats: dict[str, str]) -> str:
    """`table` as aligned text: each column in its format of `formats` (`d`: a whole number) or, if it
    holds numbers, to 4 significant digits; "-" where a value is missing, text cut at 20 characters."""
    def cell(value, spec: str | None) -> str:
        if value is None or pd.isna(value):
            return "-"
        if spec == "d":
            return str(int(value))
        if spec or isinstance(value, float):
            return format(value, spec or ".4g")
        return str(value)[:20]

    shown = pd.DataFrame({c: [cell(v, formats.get(c)) for v in table[c]] for c in table.columns})
    return shown.to_string(index=False)


def print_plan(table: pd.DataFrame, kept: int, cfg, run_dir: Path) -> None:
    """The kept candidates' key figures and one line on how many will be trained (all in candidates.csv)."""
    if cfg.search.space == "shares":
        print(f"search.space=shares: Optuna's sampler picks up to {cfg.search.trials} networks at "
              f"{cfg.search.target}x the proxy base's FLOPs; {run_dir / 'candidates.csv'} lists them at the end")
        return
    plan = table[table["kept"].astype(bool)].copy()
    plan["MFLOPs"] = plan["fvcore_flops"].fillna(plan["flops"]).astype(float) / 1e6
    shape = ["series", "phi", "depth", "width"] if cfg.series else ["alpha", "beta", "gamma"]
    columns = [*shape, "resolution", "MFLOPs", "measured_ratio"]
    formats = {"resolution": "d", "MFLOPs": ".1f", "measured_ratio": ".3f", "phi": ".3g"}
    print(as_text(plan[columns].head(PLAN_ROWS), formats))
    if len(plan) > PLAN_ROWS:
        print(f"... and {len(plan) - PLAN_ROWS} more kept rows")
    if cfg.series:
        print(f"{kept} distinct points in {len(cfg.series)} series")
        print(f"every series point: {run_dir / 'candidates.csv'}")
    else:
        print(f"{kept} of {len(table)} grid points kept (measured FLOPs ratio within "
              f"{cfg.search.flops_tolerance:.0%} of {cfg.search.target})")
        print(f"every grid point: {run_dir / 'candidates.csv'}")


def margin_sentence(best: dict, run_dir: Path) -> str:
    """One plain sentence on how sure best.yaml's pick is (its `verdict`)."""
    verdict, check = best["verdict"], f"python -m search.fidelity {run_dir}"
    if verdict == "no_runner_up":
        return "Only one candidate completed: there is no runner-up to compare the best with."
    lead = f"The best candidate leads the runner-up (trial {best['runner_up_trial']})"
    lead += "" if best["margin"] is None else f" by {100 * best['margin']:.1f} points"
    if verdict == "no_noise_estimate":
        return (f"{lead}; with one seed for either of them there is no noise estimate: search.confirm_top=2 (the "
                f"default) gives both more seeds, or run {check}")
    se = f"standard error {100 * best['margin_noise']:.1f} points"
    if best.get("margin_needed") is None:  # best.yaml written before 2026-11-24's t test: 2 standard errors
        noise = f"twice its {se}"
    else:
        noise = f"the {100 * best['margin_needed']:.1f} points a one-sided Welch t test at 95% asks for ({se})"
    if verdict == "separable":
        return f"{lead}, more than {noise}: beyond seed noise."
    return f"{lead}, within {noise}: seed noise could explain it; {check} tells more."


def rising_sentence(best: dict, run_dir: Path) -> str | None:
    """A warning when the best's last epoch still lifted it by more than its seed std (one seed: by
    more than a point): the budget stopped it while rising, so a longer one may order the candidates
    otherwise. None when it had levelled off."""
    gain = best.get("last_epoch_gain")
    noise, bar = (best["score_std"], "its seed std") if best["seeds"] > 1 else (0.01, "one point")
    if gain is None or gain <= noise:
        return None
    return (f"Its last epoch still added {100 * gain:.1f} points, more than {bar}: the budget stopped it while "
            f"rising, and a longer one may rank the candidates otherwise; python -m search.fidelity {run_dir} measures it.")


def chance_sentence(trials: pd.DataFrame, classes: int, val_images: int) -> str | None:
    """A warning when scored candidates score no more than 3 binomial standard errors above guessing
    (1 / classes, on `val_images` validation images): the budget left them untrained; their order is noise."""
    scores = pd.to_numeric(trials.score[trials.state == "COMPLETE"], errors="coerce").dropna()
    chance = 1 / classes
    near = int((scores <= chance + 3 * math.sqrt(chance * (1 - chance) / val_images)).sum())
    if not near:
        return None
    return (f"{near} of {len(scores)} scored candidates are at most 3 binomial standard errors above chance ({100 * chance:.0f}% "
            f"on {classes} classes, {val_images} validation images): the budget barely trained them and their order is "
            "noise; raise train.epochs or train.max_images.")


def print_results(trials: pd.DataFrame, params: list[str], best, run_dir: Path, seconds: float,
                  chance: str | None = None) -> None:
    """The trials sorted by score, the best candidate, `chance` (chance_sentence), and where the results are."""
    shown = trials[trials.state != "FAIL"].copy()
    shown["score"] = pd.to_numeric(shown["score"], errors="coerce")
    shown = shown.sort_values("score", ascending=False, na_position="last")
    series = ["series"] if shown["series"].nunique() > 1 else []  # a plain grid search: all "grid"
    shown["seeds"] = [len(seed_list(v)) or None for v in shown["seed_scores"]]
    seeds = ["seeds"] if shown["seeds"].max() > 1 else []  # confirmed candidates, or search.seeds > 1
    columns = ["number", "state", *series, *params, "resolution", "measured_ratio", "score", *seeds, "images_seen"]
    table = shown[columns].rename(columns={"images_seen": "images"})  # 80 columns hold the grid's table
    print(as_text(table, {"number": "d", "resolution": "d", "images": "d", "seeds": "d"}))
    sentences = [chance]
    if best is not None:
        print(f"best: alpha={best['alpha']} beta={best['beta']} gamma={best['gamma']} "
              f"score={best['score']:.4f} -> {run_dir / 'best.yaml'}")
        sentences = [margin_sentence(best, run_dir), rising_sentence(best, run_dir), chance]
    for sentence in sentences:
        if sentence:
            print(textwrap.fill(sentence, shutil.get_terminal_size().columns - 1,
                                break_long_words=False, break_on_hyphens=False))
    print(f"done in {seconds:.0f} s; results in {run_dir}")
