"""Checks of the command line that run before Hydra composes, so that bad input gets one line."""

from __future__ import annotations

import argparse
from pathlib import Path

from search.config import ConfigError

# The pip package of each Hydra plugin an override may name (hydra/launcher=submitit_slurm), by prefix.
PLUGIN_PACKAGES = {
    "launcher": {"submitit": "hydra-submitit-launcher", "joblib": "hydra-joblib-launcher",
                 "ray": "hydra-ray-launcher", "rq": "hydra-rq-launcher"},
    "sweeper": {"optuna": "hydra-optuna-sweeper", "ax": "hydra-ax-sweeper",
                "nevergrad": "hydra-nevergrad-sweeper"},
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line read by Hydra's own parser, as @hydra.main reads it: flags and their values
    (`--cfg job`, `-p base`, `-cn config`) are told apart from the overrides (`args.overrides`)."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser().parse_args(argv)


COMPLETION = ("install", "uninstall", "query")  # --shell-completion's subcommands, each =SHELL
SHELLS = ("bash", "fish", "zsh")  # Hydra's completion plugins


def check_shell_completion(args: list[str]) -> None:
    """`-sc install=bash`: exactly one subcommand naming a shell (Hydra's own error spans lines)."""
    words = [a.partition("=") for a in args]
    if len(words) != 1 or words[0][0] not in COMPLETION or words[0][2] not in SHELLS:
        raise ConfigError(f"--shell-completion takes one of {', '.join(c + '=SHELL' for c in COMPLETION)} "
                          f"(SHELL: {', '.join(SHELLS)})" + (f", not {' '.join(args)!r}" if args else ""))


def check_command_line(args: argparse.Namespace, conf_dir: Path) -> None:
    """Every check of the parsed command line that can run before Hydra composes.

    Shell completion's words (`install=bash`) are no overrides. Left to Hydra: a re-run, and another
    config folder (`-cp`, `-cd`), which this check cannot see; a --multirun sweep is not composed here.
    """
    if args.shell_completion:
        return check_shell_completion(args.overrides)
    if args.experimental_rerun or args.config_path or args.config_dir:
        return
    check_group_choices(args.overrides, conf_dir)
    check_hydra_plugins(args.overrides, conf_dir)
    if not args.multirun:
        check_overrides(args.overrides, conf_dir, args.config_name or "config")


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


def check_hydra_plugins(args: list[str], conf_dir: Path) -> None:
    """Reject `hydra/launcher=X` or `hydra/sweeper=X` naming no installed plugin, with the pip package to install."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    chosen = [(key, value) for key, sep, value in (a.lstrip("+").partition("=") for a in args)
              if sep and key.startswith("hydra/")]
    if not chosen:
        return
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        installed = {key: loader.get_group_options(key) for key, _ in chosen}
    for key, value in chosen:
        if value in installed[key] or value == "null":
            continue
        kind = key.partition("/")[2]
        package = next((p for prefix, p in PLUGIN_PACKAGES.get(kind, {}).items() if value.startswith(prefix)), None)
        hint = f"pip install {package}" if package else f"installed: {', '.join(installed[key]) or 'none'}"
        raise ConfigError(f"{key}={value!r} is not installed: {hint}")


def check_overrides(args: list[str], conf_dir: Path, config_name: str = "config") -> None:
    """Compose the config once to turn Hydra's multi-line errors (wrong type, unknown key) into one line.

    `args` are overrides only (parse_args); Hydra's own settings are left to Hydra: a plain compose cannot take them.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    overrides = [a for a in args if not a.lstrip("+~").startswith("hydra")]
    group_dirs = {d.name for d in conf_dir.iterdir() if d.is_dir()}
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            compose(config_name, overrides=overrides)
    except HydraException as e:
        cause = e.__cause__
        arg = next((a for a in overrides if a in str(e)), " ".join(overrides))
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):  # an unknown key
            key = cause.full_key or ""
            parent = key.rpartition(".")[0]
            groups = [a for a in overrides if a.lstrip("+~").partition("=")[0] in group_dirs]  # chosen options
            with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
                root = compose(config_name, overrides=groups)
            node = OmegaConf.select(root, parent) if parent else root
            raise ConfigError(f"{arg}: no key {key!r}; {parent or 'the config'} has: {', '.join(node)}") from None
        if isinstance(cause, OmegaConfBaseException):  # a value of the wrong type
            raise ConfigError(f"{arg}: {str(cause).splitlines()[0]}") from None
        hydra_says = "; ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise ConfigError(f"{arg}: {hydra_says}") from None
