"""Compound-scaling search: `python run_search.py base=mobilenetv2` (see README)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra

from search.cli import check_command_line, parse_args
from search.config import ConfigError, register

register()
CONF = Path(__file__).resolve().parent / "conf"  # absolute: also found when cli() is called in-process


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg) -> int:
    from search.data import DataError
    from search.runner import run  # heavy imports after Hydra has parsed the command line
    from search.storage import StorageError
    from search.trials.workers import WorkerError

    try:
        return run(cfg)
    except (ConfigError, DataError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except WorkerError as e:  # results are written; a worker process died on the way
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def cli(argv: list[str] | None = None) -> None:
    """The command line: read it as Hydra does, check its overrides in one line, then let Hydra run."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        check_command_line(args, CONF)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if args.shell_completion and args.overrides[0].startswith("query="):
        # The shell sets COMP_LINE, the line being completed; typed by hand, complete an empty line. Only the
        # script's name: Hydra's pattern for "python <script>" has no room for a "-" in a folder's name.
        os.environ.setdefault("COMP_LINE", f"python {os.path.basename(sys.argv[0])} ")
    sys.argv = [sys.argv[0], *argv]
    main()


if __name__ == "__main__":
    cli()
