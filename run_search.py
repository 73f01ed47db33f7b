"""Compound-scaling search: `python run_search.py base=mobilenetv2` (see README)."""

import sys
from pathlib import Path

import hydra

from search.config import ConfigError, check_group_choices, register

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg) -> int:
    from search.data import DataError
    from search.runner import run  # heavy imports after Hydra has parsed the command line
    from search.study import StorageError
    from search.workers import WorkerError

    try:
        return run(cfg)
    except (ConfigError, DataError, StorageError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except WorkerError as e:  # results are written; a worker process died on the way
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:], Path(__file__).resolve().parent / "conf")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    main()
