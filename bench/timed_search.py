"""`run_search.py` with timers around the phases the search bench splits its wall time into.

    python bench/timed_search.py TIMINGS_JSON [run_search.py overrides...]

Listens to the search's phase timers (`search.timing`): data loading and preparation, complexity
counting (the whole grid), the proxy trainings and, inside them, evaluation (precise BN +
validation). Writes the seconds and this process's peak resident memory to TIMINGS_JSON.
"""

from __future__ import annotations

import json
import resource
import runpy
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECONDS: dict = defaultdict(float)


def instrument() -> None:
    from search import timing

    def add(phase: str, seconds: float) -> None:  # a pruned trial's train_call ends by an exception: counted too
        SECONDS[phase] += seconds

    timing.add_listener(add)


def main() -> None:
    out, overrides = Path(sys.argv[1]), sys.argv[2:]
    start = time.perf_counter()
    instrument()
    sys.argv = [str(ROOT / "run_search.py"), *overrides]
    try:
        runpy.run_path(str(ROOT / "run_search.py"), run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            raise
    finally:
        SECONDS["in_process"] = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        out.write_text(json.dumps(dict(SECONDS, peak_rss_bytes=peak), indent=1))


if __name__ == "__main__":
    main()
