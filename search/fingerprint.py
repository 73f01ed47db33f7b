"""The settings that change a score, recorded in the study so that a resume cannot mix scores.

A study ranks its candidates by their scores, so every trial in it must be scored the same way.
The first process to open a study records `score_settings(cfg)` in it (study user attrs: the
settings as canonical JSON, and their SHA-256); a later command on the same study (a resume, a
worker joining) whose settings differ is refused, naming the keys that differ.

Scored: the base, the data, the training (all but where and how fast it runs), the grid (and
search.space) and the series. Free to change: threads, device, precision, processes, storage
settings, the pruner, seeds, attempts, search.max_candidates, search.trials (they change which
trials run or how fast, never how a finished trial was scored). Studies made before this record
existed have none; they are accepted and get this run's.
"""

from __future__ import annotations

import hashlib
import json
import logging

from omegaconf import DictConfig, OmegaConf

from search.config import ConfigError

log = logging.getLogger("search")

ATTR = "score_settings"  # study user attr: canonical JSON of score_settings(cfg)
HASH_ATTR = "score_settings_sha256"  # study user attr: its SHA-256 (hex)
GRID = ("alpha", "beta", "gamma", "target", "tolerance", "flops_tolerance")  # the search keys that are scored
UNSCORED_TRAIN = ("threads", "device", "precision", "deterministic", "channels_last", "eval_batch_size", "checkpoint")
SHOWN = 3  # differences named in the error; the rest are counted
ABSENT = object()


def score_settings(cfg) -> dict:
    """The subset of the config that changes a candidate's score (or which candidates the study holds)."""
    c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    return {
        "base": {k: v for k, v in c["base"].items() if v is not None or k != "spec"},  # as recorded before base.spec
        "data": c["data"],
        "train": {k: v for k, v in c["train"].items() if k not in UNSCORED_TRAIN},
        "search": {k: c["search"][k] for k in GRID} | _space(c["search"]),
        "series": c.get("series") or {},
        "experiment": c.get("experiment"),
    }


def _space(search: dict) -> dict:
    """search.space where it is not the grid: grid studies recorded before the share space stay valid."""
    space = search.get("space", "grid")
    return {} if space == "grid" else {"space": space}


def canonical(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


def digest(settings: dict) -> str:
    return hashlib.sha256(canonical(settings).encode()).hexdigest()


def _show(value) -> str:
    if value is ABSENT:
        return "(absent)"
    if isinstance(value, dict):
        return "{...}"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """'dotted.key: old -> new' for every setting that differs, in key order; a section on one
    side only (a series added) is one difference."""
    out = []
    for k in sorted(old.keys() | new.keys()):
        key, a, b = f"{prefix}{k}", old.get(k, ABSENT), new.get(k, ABSENT)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{key}.")
        elif a != b:
            out.append(f"{key}: {_show(a)} -> {_show(b)}")
    return out


def refusal(name: str, diffs: list[str]) -> str:
    """The one-line error of a command whose score settings differ from its study's."""
    shown = "; ".join(diffs[:SHOWN]) + (f" and {len(diffs) - SHOWN} more" if len(diffs) > SHOWN else "")
    return (f"name={name} was scored with other settings than this command's ({shown}, the run's value first): "
            "resuming would mix scores of unlike trainings; use a new name= for these settings, or the run's own "
            "(its config.yaml)")


def check(attrs: dict, settings: dict, name: str) -> None:
    """Raise ConfigError if the study with user attrs `attrs` recorded score settings other than `settings`."""
    recorded = attrs.get(ATTR)
    if recorded is None or attrs.get(HASH_ATTR) == digest(settings):
        return
    diffs = differences(json.loads(recorded), json.loads(canonical(settings)))
    if diffs:
        raise ConfigError(refusal(name, diffs))


def adopt(study, settings: dict) -> None:
    """Check `settings` against what `study` recorded; record them where it has none yet."""
    attrs = study.user_attrs
    check(attrs, settings, study.study_name)
    if ATTR in attrs:
        return
    if study.get_trials(deepcopy=False):
        log.info("study %r has no record of the settings it was scored with (made before they were "
                 "recorded): recording this run's; later commands on it must match them", study.study_name)
    study.set_user_attr(ATTR, canonical(settings))
    study.set_user_attr(HASH_ATTR, digest(settings))
