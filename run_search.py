"""Compound-scaling search: `python run_search.py base=mobilenetv2` (see README)."""

import sys

import hydra

from search.config import ConfigError, register

register()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg) -> int:
    from search.data import DataError
    from search.runner import run  # heavy imports after Hydra has parsed the command line

    try:
        return run(cfg)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
