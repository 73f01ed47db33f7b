"""The result tables of a run: trials.csv from the study, and best.yaml with its family."""

from __future__ import annotations

import json
import math

import optuna
import pandas as pd

from models import native_resolution, scaled_resolution
from models.complexity import measure
from search.evidence import last_epoch_gain, margin_verdict
from search.record import CANDIDATE_COLUMNS, SEARCH_SERIES, TRIAL_COLUMNS


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, the candidate record and the results of its proxy training."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        row = dict(number=t.number, state=t.state.name, value=t.value, duration_seconds=duration)
        row.update({k: v for k, v in t.user_attrs.items() if k in TRIAL_COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)


def sampled_candidates(trials: pd.DataFrame) -> pd.DataFrame:
    """candidates.csv of a share search: each network its sampler proposed, once (kept: trained, on the FLOPs target)."""
    own = trials[trials.duplicate_of.isna() & trials.key.notna()].drop_duplicates("key", keep="last")
    counts = {"params": int, "flops": int, "resolution": int, "fvcore_flops": "Int64", "activations": "Int64", "kept": bool}
    return own[CANDIDATE_COLUMNS].astype(counts)  # whole numbers, as a grid's candidates.csv has them


def search_images(trials: pd.DataFrame, seeds: int) -> pd.Series:
    """Images each trial trained in the search phase, its first `seeds` seeds. A confirmed candidate's
    row also holds the confirmation's extra seeds (search/confirm.py folds them in); every epoch
    trains the same number of images, so a row's images are split by its seeds' epochs."""
    def first_seeds(row) -> float:
        curves = seed_list(row.accuracies)
        epochs = sum(map(len, curves))
        return row.images_seen * sum(map(len, curves[:seeds])) / epochs if epochs else row.images_seen
    images = pd.to_numeric(trials.images_seen, errors="coerce").astype(float)  # a missing count is NaN
    return pd.Series([first_seeds(r) for r in trials.assign(images_seen=images).itertuples()], index=trials.index)


def images_to_best(trials: pd.DataFrame, best_number: int, seeds: int) -> int:
    """Images the search phase trained, in trial order, up to and including the best trial: what the
    search paid to find it (the confirmation's extra seeds, trained later, are not counted)."""
    return int(search_images(trials[trials.number <= best_number], seeds).fillna(0).sum())


def seed_list(value) -> list:
    """A list-valued result (seed_scores, accuracies) as a list: as the study holds it, or as the
    string a CSV round trip makes of it; empty when absent."""
    if isinstance(value, str):
        return json.loads(value.replace("nan", "NaN"))
    return [] if value is None or isinstance(value, float) else list(value)


def family_table(base_name: str, alpha: float, beta: float, gamma: float, phis) -> list[dict]:
    """The full-size base scaled by d = alpha^phi, w = beta^phi, r = gamma^phi (paper's Table 2), one
    row per phi; phi < 0 gives networks smaller than the base, under the same rounding rules."""
    native = native_resolution(base_name)
    rows = []
    for phi in phis:
        d, w, r = alpha**phi, beta**phi, gamma**phi
        res = scaled_resolution(native, r)
        c = measure(base_name, round(d, 10), round(w, 10), res)
        rows.append(
            dict(phi=phi, d=round(d, 4), w=round(w, 4), r=round(r, 4), resolution=res, params=c.params,
                 flops=c.flops, activations=c.activations)
        )
    return rows


def completed_candidates(trials: pd.DataFrame) -> pd.DataFrame:
    """The rows of trials.csv that compete for best.yaml: a search's completed trials, a share
    search's repeats of a trained network left out."""
    return trials[(trials.state == "COMPLETE") & trials.series.isin(SEARCH_SERIES) & trials.duplicate_of.isna()]


def best_summary(cfg, trials: pd.DataFrame) -> dict | None:
    """best.yaml: the best completed candidate of a grid or share search, the images trained until it
    was found and in all, how far it leads the runner-up (margin, its standard error over seeds and
    the margin Welch's t test needs: search.evidence.margin_verdict), and the family it implies."""
    done = completed_candidates(trials)
    if done.empty:
        return None
    best = done.loc[done.score.astype(float).idxmax()]
    others = done[done.key != best.key]
    runner = others.loc[others.score.astype(float).idxmax()] if not others.empty else None
    best_seeds, runner_seeds = seed_list(best.seed_scores), None if runner is None else seed_list(runner.seed_scores)
    lead = margin_verdict(best_seeds, runner_seeds)
    alpha, beta, gamma = (float(best[k]) for k in ("alpha", "beta", "gamma"))
    return dict(
        base=cfg.base.name,
        alpha=alpha, beta=beta, gamma=gamma,
        product=round(alpha * beta**2 * gamma**2, 6),
        measured_ratio=float(best.measured_ratio),
        score=float(best.score), score_std=float(best.score_std), seeds=len(best_seeds), trial=int(best.number),
        images_to_best=images_to_best(trials, int(best.number), cfg.search.seeds),
        images_total=int(pd.to_numeric(trials.images_seen, errors="coerce").fillna(0).sum()),
        runner_up_trial=None if runner is None else int(runner.number),
        runner_up_score=None if runner is None else float(runner.score),
        runner_up_seeds=None if runner is None else len(runner_seeds),
        margin=lead["margin"], margin_noise=lead["noise"], margin_needed=lead["needed"], verdict=lead["verdict"],
        last_epoch_gain=_rounded(last_epoch_gain(seed_list(best.accuracies))),
        proxy=dict(
            data=cfg.data.name, variant=cfg.base.variant, depth=float(best.depth), width=float(best.width),
            resolution=int(best.resolution), params=int(best.params), flops=int(best.flops),
        ),
        family_note=f"{cfg.base.name} at its native resolution, 1000 classes, scaled by alpha^phi, beta^phi, gamma^phi",
        family=family_table(cfg.base.name, alpha, beta, gamma, range(cfg.search.phi_min, cfg.search.phi_max + 1)),
    )


def _rounded(value: float) -> float | None:
    """A fraction for best.yaml: 5 decimals, None where it is not measured (NaN)."""
    return None if math.isnan(value) else round(value, 5)
