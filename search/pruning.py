"""Pruners, and the gate that lets one decide only at an epoch whose ranking has been measured to hold.

A median pruner stops a candidate at epoch e because it ranks low *at epoch e*. That is sound only
where epoch e ranks candidates as the end of training does, and on short proxy budgets early epochs
often do not (see search/evidence.py `epoch_rank_agreement`). `AgreementGate` measures this during
the search: at each epoch it computes Kendall's tau between that epoch's accuracy and the final
score over the candidates that have finished, and lets the wrapped pruner decide only where that
tau reaches `min_agreement` over at least `min_trials` finished candidates. Until enough candidates
finish, nothing is pruned; an epoch that ranks badly is never pruned at. Nor is the last epoch:
a candidate trained to the end gets its score, whatever the pruner thinks of it.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from search.evidence import kendall_tau

AGREEMENT_TRIALS = 3  # Kendall's tau over 2 candidates is always +-1: no measurement at all


class AgreementGate(optuna.pruners.BasePruner):
    """Ask `inner` only before the last epoch, and (with `min_agreement` > 0) only at epochs whose
    measured rank agreement with the final score is high enough."""

    def __init__(self, inner: optuna.pruners.BasePruner, last_epoch: int, min_agreement: float,
                 min_trials: int = AGREEMENT_TRIALS):
        self.inner, self.last_epoch, self.min_agreement = inner, last_epoch, min_agreement
        self.min_trials = max(min_trials, AGREEMENT_TRIALS)

    def agreement(self, study: optuna.Study, step: int) -> tuple[float, int]:
        """Kendall tau between accuracy at `step` and the final score over finished trials, and their count."""
        finished = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                    if step in t.intermediate_values and t.value is not None]
        at_step = [t.intermediate_values[step] for t in finished]
        return kendall_tau(at_step, [t.value for t in finished]), len(finished)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step >= self.last_epoch:  # trained to the end: it gets its score
            return False
        if self.min_agreement > 0:
            tau, n = self.agreement(study, step)
            if n < self.min_trials or not tau >= self.min_agreement:  # NaN (all tied) is no agreement
                return False
        return self.inner.prune(study, trial)


def make_pruner(name: str, startup_trials: int, max_steps: int, warmup_steps: int = 0,
                min_agreement: float = 0.0) -> optuna.pruners.BasePruner:
    """The pruner named in the config; steps are epochs completed (1, 2, ...), `max_steps` the last.
    It never prunes at the last epoch, and with `min_agreement` > 0 decides only at epochs measured
    to rank as the final score does."""
    if name == "median":
        # Optuna may prune from step == n_warmup_steps on; our steps count epochs from 1, so
        # "warm-up of k epochs" means the first possible prune is at step k + 1.
        pruner = optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup_steps + 1)
    elif name == "halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    elif name == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_steps, reduction_factor=3)
    else:
        return optuna.pruners.NopPruner()
    return AgreementGate(pruner, max_steps, min_agreement, startup_trials)
