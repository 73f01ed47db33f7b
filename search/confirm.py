"""More seeds for a search's close top candidates: search.confirm_top and search.confirm_seeds.

One seed per candidate cannot tell a lead from seed noise. Once every candidate is scored, the
`confirm_top` best by score are trained with more seeds, up to `confirm_seeds` each, and scored by
their mean; then again while the `confirm_top` best include one not yet confirmed. When it stops,
the pick and (confirm_top >= 2) its runner-up have the same seeds, so best.yaml's verdict has a
noise estimate. bench/budget_split.py --rule until replays this rule on measured seeds.

The extra trainings are the proxy-budget trials of the run's fidelity study ("<name>.fidelity",
keys "<candidate>|proxy|seed=N"), which `python -m search.fidelity` then reuses. trials.csv folds
them into their candidate's row (seed_scores, score = the mean, score_std, accuracies, images and
seconds); the Optuna trial's own `value` stays its first seed's.
"""

from __future__ import annotations

import logging
import statistics
import time

import pandas as pd
from optuna.trial import TrialState

from search.evidence import seed_std
from search.fidelity import plan, study_name, trial_key
from search.record import CANDIDATE_COLUMNS
from search.results import trials_table
from search.results.tables import completed_candidates, seed_list
from search.storage import load_existing, queue
from search.trials import workers
from search.trials.context import optuna_ranges, reopen
from search.trials.loop import past, work

log = logging.getLogger("search")
ADDED = ("images_seen", "train_seconds", "eval_seconds")  # summed over a candidate's trainings


def extra_seeds(cfg) -> list[int]:
    """The seeds a confirmed candidate adds to the search.seeds its trial trained; none for an experiment."""
    s, first = cfg.search, int(cfg.train.seed)
    if s.confirm_top <= 0 or cfg.series:
        return []
    return [first + k for k in range(s.seeds, s.confirm_seeds)]


def fold(trials: pd.DataFrame, confirmations, seeds: list[int]) -> pd.DataFrame:
    """trials.csv with each candidate's completed trials of `confirmations` (the fidelity study, or
    None) added to its row, in seed order up to the first seed missing, so that seed_scores stays
    seeds train.seed, train.seed + 1, ... as search.fidelity reads it."""
    if confirmations is None or not seeds:
        return trials
    done = {t.user_attrs.get(queue.KEY_ATTR): t
            for t in confirmations.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    rows = trials.to_dict("records")
    for row in rows:
        if row["state"] != "COMPLETE" or not pd.isna(row["duplicate_of"]):
            continue
        extra = []
        for seed in seeds:
            t = done.get(trial_key(row["key"], "proxy", seed))
            if t is None:
                break
            extra.append(t)
        if not extra:
            continue
        scores = seed_list(row["seed_scores"]) + [t.value for t in extra]
        row.update(score=statistics.fmean(scores), score_std=seed_std(scores), seed_scores=scores,
                   accuracies=seed_list(row["accuracies"]) + [seed_list(t.user_attrs.get("accuracies"))[0] for t in extra])
        for name in ADDED:
            row[name] = sum(float(x.user_attrs.get(name) or 0) for x in extra) + float(row[name] or 0)
    return pd.DataFrame(rows, columns=trials.columns).astype({"images_seen": "Int64"})


def unconfirmed_top(trials: pd.DataFrame, cfg) -> list[dict]:
    """Candidate records of the search.confirm_top best completed candidates (by folded score)
    that have fewer than search.confirm_seeds seeds."""
    done = completed_candidates(trials)
    top = done.assign(_score=pd.to_numeric(done.score)).sort_values(["_score", "number"], ascending=[False, True])
    top = top.head(cfg.search.confirm_top)
    short = top[[len(seed_list(s)) < cfg.search.confirm_seeds for s in top.seed_scores]]
    return short[CANDIDATE_COLUMNS].astype(object).where(short[CANDIDATE_COLUMNS].notna(), None).to_dict("records")


def scored(ctx) -> pd.DataFrame:
    """trials.csv of the search in `ctx`, with the confirmations trained so far folded in (read
    only: a worker process writes the same table from what the coordinator trained)."""
    trials, seeds = trials_table(ctx.study), extra_seeds(ctx.cfg)
    return fold(trials, load_existing(ctx.storage, study_name(ctx.cfg.name)), seeds) if seeds else trials


def confirm(ctx, deadline: float | None) -> None:
    """The coordinator's confirmation rounds on the search's study in `ctx`, once every trial there
    is finished; stops at `deadline` (a time.perf_counter() value; a rerun goes on)."""
    cfg, seeds = ctx.cfg, extra_seeds(ctx.cfg)
    if not seeds:
        return
    states = queue.count_states(ctx.study)
    if states.get("WAITING") or states.get("RUNNING"):
        log.info("search.confirm_top: candidates are still queued or running; the same command confirms the "
                 "best once every candidate is scored")
        return
    tried, cctx = set(), None
    while True:
        trials = scored(ctx)
        todo = [c for c in unconfirmed_top(trials, cfg) if c["key"] not in tried]
        if not todo:
            return
        if past(deadline):
            log.warning("search.timeout: %d of the best candidates are not confirmed; run the same command again "
                        "to confirm them", len(todo))
            return
        tried |= {c["key"] for c in todo}
        if cctx is None:
            everything = trials[trials.state == "COMPLETE"][CANDIDATE_COLUMNS].to_dict("records")
            cctx = reopen(ctx, study_name(cfg.name), optuna_ranges(everything), pruner="none")
            if cfg.storage.kind == "sqlite":
                queue.requeue_interrupted(cctx.study, cctx.params_of)
        runs = plan(todo, {"proxy": int(cfg.train.epochs)}, seeds, reused={})  # the fidelity study's own records
        added = queue.enqueue_missing(cctx.study, runs, cctx.params_of)
        log.info("confirming %s with seed(s) %s: %d training(s)", ", ".join(c["key"] for c in todo),
                 ", ".join(map(str, seeds)), added)
        left = None if deadline is None else max(0.0, deadline - time.perf_counter())
        pool = workers.start(cfg, len(runs), cctx.ranges, cctx.study.study_name, "none", left) if cfg.search.workers > 1 else []
        work(cctx, len(runs), deadline)
        workers.raise_if_died(workers.wait(pool))
