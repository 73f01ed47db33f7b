"""Compound-scaling search: candidates, complexity, data, proxy training, Optuna study."""

import os

# OpenMP threads that spin while waiting take the cores from whatever else runs (other workers,
# a neighbour's tests) and then wait for each other: measured 3-4.5x slower proxy training on a
# loaded 2-core machine (bench/README.md). Sleeping waits cost little when the machine is idle.
# Read when torch loads OpenMP, so only if `search` is imported before torch; a user's value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from search.memory import keep_heap  # noqa: E402

keep_heap()
