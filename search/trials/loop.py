"""The trial loop: claim a queued candidate, proxy-train it, report each epoch, tell the study; retry on death."""

from __future__ import annotations

import logging
import statistics
import time

import optuna
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from models import make
from search import storage, timing
from search.checkpoint import Checkpoint
from search.evidence import seed_std
from search.interrupt import kept_ctrl_c, raise_if_ctrl_c
from search.memory import release_memory
from search.proxy import TrainingDiverged, steps_in_epoch, train
from search.storage import heartbeat, queue
from search.trials import shares
from search.trials.context import RunContext, run_dir_of

log = logging.getLogger("search")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def trial_plan(ctx: RunContext, attrs: dict) -> tuple[object, list[int]]:
    """The training config and seeds of a trial: the run's, unless its user attrs "epochs" and
    "seed" ask for that one seed trained for that many epochs (search/fidelity.py's trials)."""
    t = ctx.cfg.train
    if attrs.get("epochs") is not None:
        t = OmegaConf.merge(t, {"epochs": int(attrs["epochs"])})
    if attrs.get("seed") is not None:
        return t, [int(attrs["seed"])]
    return t, [t.seed + k for k in range(ctx.cfg.search.seeds)]


def checkpoints(ctx: RunContext, attrs: dict) -> list[Checkpoint | None]:
    """The training-state file of each of a trial's seeds (None where train.checkpoint is off)."""
    t, seeds = trial_plan(ctx, attrs)
    if not t.checkpoint or attrs.get("key") is None:
        return [None] * len(seeds)
    return [Checkpoint(run_dir_of(ctx.cfg), ctx.study.study_name, attrs["key"], seed, t.epochs) for seed in seeds]


def objective(ctx: RunContext, trial: optuna.Trial, bar, step_done) -> float:
    """Proxy-train one candidate for each seed; the pruner watches the first seed.
    `step_done(images)` is called after every training step."""
    rec = trial.user_attrs
    for name, (low, high) in ctx.ranges.items():
        trial.suggest_float(name, low, high)  # returns the queued value; records the distribution
    train_data, val_data = ctx.data_at(rec["resolution"])
    release_memory()  # the last trial's and the resize's freed heap, before this training's peak
    t, seeds = trial_plan(ctx, rec)
    scores, images, train_s, eval_s, curves = [], 0, 0.0, 0.0, []
    reported = 0  # epochs told to the pruner: a resumed training restores several at once

    def record(**attrs):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)

    def report(result):
        nonlocal reported
        for epoch, accuracy in enumerate(result.accuracies[reported:], reported + 1):
            trial.report(accuracy, epoch)  # step = epochs completed: the pruners' resource unit
        reported = epoch = len(result.accuracies)
        accuracy = result.accuracy
        bar.set_postfix_str(f"epoch {epoch}: acc {accuracy:.3f}")
        if trial.should_prune():
            record(images_seen=result.images_seen, accuracies=[[round(a, 5) for a in result.accuracies]],
                   train_seconds=round(result.train_seconds, 3), eval_seconds=round(result.eval_seconds, 3))
            raise optuna.TrialPruned(f"pruned after epoch {epoch} at accuracy {accuracy:.3f}")

    for k, (seed, checkpoint) in enumerate(zip(seeds, checkpoints(ctx, rec))):
        torch.manual_seed(seed)
        model = make(rec["base"], rec["depth"], rec["width"], rec["variant"], ctx.proxy.num_classes, ctx.proxy.in_channels)
        with timing.phase("train_call"):
            result = train(
                model, train_data, val_data, t, ctx.device, seed,
                on_epoch=report if k == 0 else None, progress=step_done, checkpoint=checkpoint,
            )
        scores.append(result.accuracy)
        images += result.images_seen
        train_s += result.train_seconds
        eval_s += result.eval_seconds
        curves.append([round(a, 5) for a in result.accuracies])
    score = statistics.fmean(scores)
    record(score=score, score_std=seed_std(scores) if len(scores) > 1 else 0.0, seed_scores=scores, accuracies=curves,
           images_seen=images, train_seconds=round(train_s, 3), eval_seconds=round(eval_s, 3),
           precision=result.precision)
    return score


def work(ctx: RunContext, total: int, deadline: float | None = None) -> None:
    """Claim queued candidates (or, in a share search, ones its sampler proposes) one at a time and
    score them until none is left, or until `deadline` (a time.perf_counter() value) has passed."""
    t = ctx.cfg.train
    per_epoch = steps_in_epoch(t, len(ctx.train_split)) * t.batch_size
    overall = tqdm(total=total, desc="search", unit="cand", position=0, disable=None)
    states = queue.count_states(ctx.study)
    if ctx.propose is None:  # every candidate was queued up front
        overall.update(total - states.get("WAITING", 0) - states.get("RUNNING", 0))
    else:  # networks trained so far (repeats of them are not counted)
        overall.update(min(total, len(shares.trained(ctx.study.get_trials(deepcopy=False, states=FINISHED)))))
    grace = storage.heartbeat_grace(ctx.cfg)
    interval = ctx.cfg.storage.heartbeat_interval if grace is not None else None
    with kept_ctrl_c(), logging_redirect_tqdm():  # log lines printed above the bars, which stay whole
        while not past(deadline) and (trial := heartbeat.claim_next(
                ctx.study, ctx.storage, grace, ctx.params_of, poll=ctx.cfg.storage.heartbeat_interval,
                max_attempts=ctx.cfg.search.max_attempts, propose=ctx.propose)):
            run_trial(ctx, trial, per_epoch, interval)
            overall.update(1)
            raise_if_ctrl_c()
    overall.close()


def past(deadline: float | None) -> bool:
    """Whether `deadline` (a time.perf_counter() value, None for none) has passed."""
    return deadline is not None and time.perf_counter() > deadline


def run_trial(ctx: RunContext, trial, per_epoch: int, interval) -> None:
    """Score one claimed trial and tell the study how it ended; `per_epoch`: images of one epoch."""
    key = trial.user_attrs.get("key")
    t, seeds = trial_plan(ctx, trial.user_attrs)
    bar = tqdm(total=per_epoch * t.epochs * len(seeds), desc=f"trial {trial.number}", unit="img",
               leave=False, position=1, disable=None)

    def step_done(images: int) -> None:
        raise_if_ctrl_c()
        bar.update(images)

    try:
        _score_and_tell(ctx, trial, key, bar, step_done, interval)
    except Exception as e:
        if not _taken_over(ctx, trial):
            raise
        # A live process whose trial another one declared stale (a long pause, a slow disk): that
        # one failed the trial and queued the candidate again, so this late result is dropped.
        log.warning("trial %d %s was declared stale (no heartbeat) and re-run elsewhere; "
                    "its late result is dropped (%s)", trial.number, key, type(e).__name__)
    finally:
        bar.close()


def _taken_over(ctx: RunContext, trial) -> bool:
    """Whether another process finished (failed as stale) the trial this process works on."""
    try:
        return ctx.storage.get_trial(trial._trial_id).state.is_finished()  # noqa: SLF001
    except Exception:
        return False


def _score_and_tell(ctx: RunContext, trial, key, bar, step_done, interval) -> None:
    study = ctx.study
    max_attempts = ctx.cfg.search.max_attempts
    try:
        with heartbeat.Heartbeat(ctx.storage, trial._trial_id, interval):  # noqa: SLF001
            value = objective(ctx, trial, bar, step_done)
        study.tell(trial, value)
        log.info("trial %d %s: score %.4f", trial.number, key, value)
    except optuna.TrialPruned as e:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        log.info("trial %d %s: %s", trial.number, key, e)
    except TrainingDiverged as e:
        trial.set_user_attr(queue.FAILURE_ATTR, str(e))
        trial.set_user_attr(queue.FINAL_ATTR, True)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.warning("trial %d %s failed: %s", trial.number, key, e)
    except Exception as e:  # a crash (out of memory, a shape error): queued again up to max_attempts tries
        if _taken_over(ctx, trial):
            raise
        lines = str(e).strip().splitlines()
        reason = f"{type(e).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")
        attempt = int(trial.user_attrs.get(queue.ATTEMPT_ATTR) or 1)
        final = queue.attempts_used_up(trial.user_attrs, max_attempts)
        trial.set_user_attr(queue.FAILURE_ATTR, f"crashed (attempt {attempt} of {max_attempts}): {reason}")
        queue.requeue(study, trial.number, trial.user_attrs, ctx.params_of, max_attempts)
        if not final:
            log.warning("trial %d %s crashed (attempt %d of %d), queued again: %s",
                        trial.number, key, attempt, max_attempts, reason)
            return  # its checkpoints stay: the next attempt goes on from them
        log.warning("trial %d %s failed for good after %d attempt(s): %s", trial.number, key, attempt, reason)
    except BaseException as e:  # Ctrl-C: the candidate goes back to the queue, not counted as an attempt
        try:
            trial.set_user_attr(queue.FAILURE_ATTR, f"interrupted: {type(e).__name__}")
            queue.requeue(study, trial.number, trial.user_attrs, ctx.params_of)
        except Exception:  # declared stale meanwhile: already re-queued by another process
            pass
        raise
    for checkpoint in checkpoints(ctx, trial.user_attrs):  # the study has the outcome: no training resumes
        if checkpoint:
            checkpoint.remove()
