"""search.space=shares: the folded triangle, width solved to the FLOPs target, one training per
network, and the search end to end (resume, best.yaml, fidelity) on a tiny base."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from search import fidelity
from search.config import ConfigError
from search.validate import validate
from search.plan.candidates import ProxyBase
from search.plan.grid import Candidate
from search.plan.shares import folded_rule, network_key, share_point
from search.runner import run
from search.storage import queue
from search.trials.shares import answer_repeat
from tests.conftest import compose

MOBILENETV2 = ProxyBase("mobilenetv2", "small", 1.0, 0.5, 32, 10, 3)  # the default proxy base
SHARES = ["search.space=shares", "search.pruner=none", "search.flops_tolerance=0.15",
          "train.epochs=1", "train.max_images=64", "train.bn_images=64"]


def test_the_folded_square_covers_the_triangle_twice():
    corners = {(0, 0): (0, 0.5, 0), (1, 0): (1, 0, 0), (0, 1): (0, 0, 0.5)}  # width-only, depth-only, resolution-only
    for (d, r), shares in corners.items():
        rule = folded_rule(d, r)
        assert (rule.depth, rule.width, rule.resolution) == pytest.approx(shares)
    inside, beyond = folded_rule(0.3, 0.4), folded_rule(0.7, 0.6)  # (0.7, 0.6) reflects onto (0.3, 0.4)
    assert (inside.depth, inside.width, inside.resolution) == pytest.approx((beyond.depth, beyond.width, beyond.resolution))
    for d, r in np.random.default_rng(0).random((200, 2)):
        rule = folded_rule(d, r)
        assert min(rule.depth, rule.width, rule.resolution) >= 0
        assert rule.depth + 2 * rule.width + 2 * rule.resolution == pytest.approx(1)


def test_width_is_solved_onto_the_nearest_flops_step_and_depth_keeps_the_grid_steps():
    goal = 2.0 * MOBILENETV2.macs(Candidate(1.0, 1.0, 1.0))
    for d, r in [(0.0, 0.5), (0.0, 0.9), (0.02, 0.3), (0.8, 0.0)]:
        c = share_point(MOBILENETV2, folded_rule(d, r), 2.0, depth_step=0.1)
        assert round(c.d * 10) == pytest.approx(c.d * 10)  # a grid depth step
        assert (c.alpha, c.beta, c.gamma, c.target_flops) == (c.d, c.w, c.r, goal)
        # No width reaches the target more closely: channels are rounded to multiples of 8, so the
        # steps are coarse at this width (up to 12% here), and the solver takes the nearer side.
        scan = min(abs(MOBILENETV2.macs(Candidate(c.d, w, c.r)) - goal) for w in np.arange(1.0, 2.0, 0.002))
        assert abs(MOBILENETV2.macs(c) - goal) <= scan, (d, r, c)
        assert abs(MOBILENETV2.macs(c) / goal - 1) < 0.15
    # A depth share of 2% keeps the base's depth: 2^0.02 rounds to the step 1.0.
    assert share_point(MOBILENETV2, folded_rule(0.02, 0.3), 2.0, depth_step=0.1).d == 1.0


def test_nearby_rules_that_round_to_one_network_share_its_key():
    rules = [folded_rule(d, 0.3) for d in (0.0, 0.03)]
    assert rules[0] != rules[1]  # two rules: a depth share of 0 and of 0.03 ...
    a, b = (share_point(MOBILENETV2, rule, 2.0, depth_step=0.1) for rule in rules)
    assert network_key(MOBILENETV2, a) == network_key(MOBILENETV2, b)  # ... one network, one key
    wider = share_point(MOBILENETV2, folded_rule(0.0, 0.0), 2.0, depth_step=0.1)
    assert network_key(MOBILENETV2, wider) != network_key(MOBILENETV2, a)


def test_a_repeated_network_gets_the_trained_score_without_training():
    study = optuna.create_study(direction="maximize")
    first = study.ask()
    first.set_user_attr(queue.KEY_ATTR, "net")
    study.tell(first, 0.42)
    repeat = study.ask()
    answer_repeat(study, repeat, {queue.KEY_ATTR: "net"}, study.trials[0])
    told = study.trials[1]
    assert told.state == optuna.trial.TrialState.COMPLETE and told.value == 0.42
    assert told.user_attrs[queue.REPEAT_ATTR] == 0


@pytest.fixture(scope="module")
def share_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("shares")
    cfg = compose(*SHARES, "search.trials=3", "name=sh", runs_dir=runs)
    assert run(cfg) == 0
    return cfg, runs / "sh"


def test_share_search_trains_each_network_once_on_the_flops_target(share_run):
    cfg, run_dir = share_run
    trials = pd.read_csv(run_dir / "trials.csv")
    trained = trials[trials.duplicate_of.isna() & trials.state.isin(["COMPLETE", "PRUNED"])]
    assert len(trained) == 3 and trained.key.is_unique
    assert (abs(trained.measured_ratio / cfg.search.target - 1) <= 0.15 + 1e-9).all()
    assert (trained.images_seen > 0).all()
    off_target = trials[(trials.state == "FAIL") & trials.duplicate_of.isna()]
    assert all("flops_tolerance" in why for why in off_target.failure)
    candidates = pd.read_csv(run_dir / "candidates.csv")
    assert set(candidates[candidates.kept].key) == set(trained.key)
    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    assert best["score"] == pytest.approx(trained.score.max())
    assert 0 < best["images_to_best"] <= best["images_total"] == trained.images_seen.sum()
    assert math.isclose(best["alpha"] * best["beta"] ** 2 * best["gamma"] ** 2, best["product"], rel_tol=1e-6)


def test_share_search_resumes_without_training_again(share_run):
    cfg, run_dir = share_run
    before = pd.read_csv(run_dir / "trials.csv")
    assert run(cfg) == 0
    after = pd.read_csv(run_dir / "trials.csv")
    assert len(after) == len(before)  # the budget is spent: nothing proposed, nothing trained


def test_fidelity_re_scores_a_share_search(share_run):
    _, run_dir = share_run
    assert fidelity.main([str(run_dir), "--factor", "2", "--seeds", "1", "--top-k", "1"]) == 0
    table = pd.read_csv(run_dir / "fidelity.csv")
    assert len(table) == 2 and table.long_n.eq(1).all() and table.proxy_n.eq(1).all()


@pytest.mark.parametrize("overrides, message", [
    (["search.space=spiral"], "search.space='spiral' is not one of: grid, shares"),
    (["search.space=shares", "search.trials=0"], "search.trials=0 must be > 0"),
    (["search.space=shares", "experiment=fig3"], "search.space=shares searches one base's rule"),
])
def test_bad_share_settings_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("+", r"\+")):
        validate(compose(*overrides, runs_dir=tmp_path))


def test_a_target_below_the_base_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="search.target=0.5: a share search scales the base up"):
        run(compose("search.space=shares", "search.target=0.5", runs_dir=tmp_path))
    assert not any(tmp_path.iterdir())  # nothing written
