"""Checks of the command line that run before Hydra composes, so that bad input gets one line."""

from __future__ import annotations

from pathlib import Path

from search.config import ConfigError


def check_group_choices(args: list[str], conf_dir: Path) -> None:
    """Reject `group=option` arguments naming no file in conf/<group>/ (Hydra's own error spans lines)."""
    groups = {d.name for d in conf_dir.iterdir() if d.is_dir()}
    for arg in args:
        key, sep, value = arg.lstrip("+").partition("=")
        if not sep or key not in groups or value == "null":
            continue
        options = sorted(f.stem for f in (conf_dir / key).glob("*.yaml"))
        for option in value.split(","):  # a --multirun sweep lists several
            if option not in options:
                raise ConfigError(f"{key}={option!r} is not one of: {', '.join(options)} (conf/{key}/)")


def check_overrides(args: list[str], conf_dir: Path) -> None:
    """Compose the config once to turn Hydra's multi-line errors (wrong type, unknown key) into one line.

    Sweeps (--multirun) and Hydra's own settings are left to Hydra: a plain compose cannot take them.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    if any(a in ("-m", "--multirun") for a in args):
        return
    overrides = [a for a in args if not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            compose("config", overrides=overrides)
    except HydraException as e:
        cause = e.__cause__
        arg = next((a for a in overrides if a in str(e)), " ".join(overrides))
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):  # an unknown key
            key = cause.full_key or ""
            parent = key.rpartition(".")[0]
            groups = [a for a in overrides if "." not in a.partition("=")[0]]  # the chosen options' keys
            with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
                root = compose("config", overrides=groups)
            node = OmegaConf.select(root, parent) if parent else root
            raise ConfigError(f"{arg}: no key {key!r}; {parent or 'the config'} has: {', '.join(node)}") from None
        if isinstance(cause, OmegaConfBaseException):  # a value of the wrong type
            raise ConfigError(f"{arg}: {str(cause).splitlines()[0]}") from None
        hydra_says = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise ConfigError(f"{arg}: {hydra_says}") from None
