"""search.space=shares: Optuna's sampler proposes the next network when nothing is queued.

A grid search enqueues every candidate up front; a share search has nothing to enqueue, so each
process that finds the queue empty asks the study's sampler for a point of the share triangle
(search/plan/shares.py), measures the network it gives, and trains it as a claimed trial. Rounding
maps many nearby rules to one network: such a proposal is answered with the trained network's
score (or failed, if that one has no score yet), costs no training, and the sampler is asked
again; so is a rule whose rounded network misses the FLOPs target by more than the grid's
search.flops_tolerance (failed, untrained). The search stops after search.trials distinct
networks, or after PROPOSALS_PER_TRIAL times as many proposals (the sampler keeps returning to
networks it has trained, or finds none on target). Two workers that propose one network at the
same moment both train it: rare, and not prevented.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Callable

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from search.plan.shares import RANGES, share_record
from search.storage import queue

log = logging.getLogger("search")
PROPOSALS_PER_TRIAL = 25  # on small proxies rounding leaves most rules off the FLOPs target


def sampler(cfg, worker: int = 0) -> optuna.samplers.BaseSampler:
    """Multivariate TPE: the two shares interact (a fixed FLOPs budget). Random for the first third
    of the budget (at least 3); seeded per process, so workers start from different points."""
    return optuna.samplers.TPESampler(n_startup_trials=max(3, cfg.search.trials // 3), multivariate=True,
                                      seed=cfg.train.seed + worker)


def trained(frozen: list) -> dict[str, optuna.trial.FrozenTrial]:
    """Each network's latest attempt, repeats and networks off the FLOPs target left out: key -> trial."""
    return {t.user_attrs[queue.KEY_ATTR]: t for t in frozen if queue.REPEAT_ATTR not in t.user_attrs
            and t.user_attrs.get(queue.KEY_ATTR) and t.user_attrs.get("kept", True)}


def proposer(ctx) -> Callable[[Callable[[int], None] | None], optuna.Trial | None]:
    """`propose(before)`: a new claimed trial of an untrained network, or None once the budget is spent.
    `before(trial_id)` records its first heartbeat, as for a claimed queued trial."""
    s = ctx.cfg.search
    distributions = {name: FloatDistribution(low, high) for name, (low, high) in RANGES.items()}
    spent = []  # said once per process: a worker asks again at every poll while others finish

    def propose(before=None) -> optuna.Trial | None:
        while True:
            frozen = ctx.study.get_trials(deepcopy=False)
            networks = trained(frozen)
            if len(networks) >= s.trials or len(frozen) >= PROPOSALS_PER_TRIAL * s.trials:
                if not spent:
                    repeats = sum(queue.REPEAT_ATTR in t.user_attrs for t in frozen)
                    log.info("share search: %d proposals, %d networks, %d repeats of one, %d off the FLOPs target or "
                             "failed", len(frozen), len(networks), repeats, len(frozen) - len(networks) - repeats)
                    spent.append(True)
                return None
            trial = ctx.study.ask(distributions)
            if before:
                before(trial._trial_id)  # noqa: SLF001
            rec = share_record(ctx.proxy, trial.params, s)
            earlier = networks.get(rec[queue.KEY_ATTR])
            if earlier is not None:
                answer_repeat(ctx.study, trial, rec, earlier)
                continue
            for key, value in queue.jsonable(rec).items():
                trial.set_user_attr(key, value)
            if rec["kept"]:
                trial.set_user_attr(queue.WORKER_ATTR, f"{socket.gethostname()}:{os.getpid()}")
                return trial
            reject(ctx.study, trial, rec, s)

    return propose


def reject(study: optuna.Study, trial: optuna.Trial, rec: dict, s) -> None:
    """Fail, untrained, a network whose rounding puts its cost outside the grid's FLOPs tolerance."""
    why = (f"measured FLOPs ratio {rec['measured_ratio']:.3f} is not within search.flops_tolerance={s.flops_tolerance} "
           f"of search.target={s.target}: rounding allows no closer network for this rule")
    trial.set_user_attr(queue.FAILURE_ATTR, why)
    trial.set_user_attr(queue.FINAL_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)
    log.debug("trial %d: %s %s", trial.number, rec[queue.KEY_ATTR], why)  # most of the triangle: too many to show


def answer_repeat(study: optuna.Study, trial: optuna.Trial, rec: dict, earlier) -> None:
    """Tell the sampler what the network of `earlier` scored, without training it again."""
    trial.set_user_attr(queue.KEY_ATTR, rec[queue.KEY_ATTR])
    trial.set_user_attr(queue.REPEAT_ATTR, earlier.number)
    latest = study._storage.get_trial(earlier._trial_id)  # noqa: SLF001  (it may have finished since)
    if latest.state == TrialState.COMPLETE:
        study.tell(trial, latest.value)
    else:
        trial.set_user_attr(queue.FAILURE_ATTR, f"same network as trial {earlier.number} ({latest.state.name})")
        trial.set_user_attr(queue.FINAL_ATTR, True)
        study.tell(trial, state=TrialState.FAIL)
    log.debug("trial %d: %s repeats trial %d's network: not trained again", trial.number, rec[queue.KEY_ATTR],
              earlier.number)
