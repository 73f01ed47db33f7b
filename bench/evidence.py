"""The default search's evidence in one command: its time, its best score, and how far its ranking holds.

    python bench/evidence.py [--seeds 3] [--factor 4] [--top-k K] [-- HYDRA_OVERRIDES...]

Runs `python run_search.py base=mobilenetv2` (plus the overrides, e.g. `data=fashion_mnist`) in a
fresh folder under --runs-dir, timed, then `python -m search.fidelity` on it, and prints what
issue #13 asks the default to reach, each against its goal: the search's wall time (<= 600 s),
the best candidate's accuracy (>= 0.60), Kendall tau against the longer budget (>= 0.6), the
spread between candidates over the seed noise (>= 3x) and the top-1 regret (<= 1 point), with the
epoch from which the proxy's ranking can be trusted (what the pruner's gate measures). The run
folder keeps fidelity.md for the details; both steps resume if interrupted (same --name).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/evidence.py` from anywhere

from search.evidence import regret_noise_words  # noqa: E402

GOALS = {"wall": 600, "best": 0.60, "tau": 0.6, "spread": 3.0, "regret": 0.01}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def step(command: list[str]) -> float:
    """Run one command with its output shown; exit with its code if it fails; return its seconds."""
    print("$ " + " ".join(command), flush=True)
    start = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT)
    if code:
        sys.exit(f"error: {command[1]} exited with {code}")
    return time.perf_counter() - start


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default=f"evidence-{datetime.date.today()}", help="run name (resumes if it exists)")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/evidence-runs"))
    parser.add_argument("--seeds", type=int, default=3, help="fidelity seeds per candidate and budget")
    parser.add_argument("--factor", type=float, default=4, help="fidelity's long budget, in proxy budgets")
    parser.add_argument("--top-k", type=int, default=None, help="fidelity on the K best and K others only")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the search (after --)")
    args = parser.parse_args(argv)
    run_dir = args.runs_dir / args.name
    fresh = not run_dir.exists()
    search = [sys.executable, "run_search.py", "base=mobilenetv2", f"name={args.name}", f"runs_dir={args.runs_dir}",
              *args.overrides]
    wall = step(search)
    fidelity = [sys.executable, "-m", "search.fidelity", str(run_dir), "--factor", str(args.factor),
                "--seeds", str(args.seeds)] + (["--top-k", str(args.top_k)] if args.top_k else [])
    fidelity_wall = step(fidelity)

    best = yaml.safe_load((run_dir / "best.yaml").read_text())
    f = yaml.safe_load((run_dir / "fidelity.yaml").read_text())
    trials = pd.read_csv(run_dir / "trials.csv")
    score = float(best["score"])

    def num(v, fmt=".2f"):
        return "n/a" if v is None else format(v, fmt)

    print(f"\ndate: {datetime.date.today()}, {os.cpu_count()} cores, {cpu_model()}")
    print(f"search: {' '.join(search[1:])}")
    timing = f"{wall:.0f} s" if fresh else f"{wall:.0f} s (resumed: not the search's time)"
    in_time = verdict(wall <= GOALS["wall"]) if fresh else "not measured"
    print(f"{'search wall time':34} {timing:>24}  goal <= {GOALS['wall']} s  {in_time}")
    print(f"{'best accuracy':34} {score:>24.3f}  goal >= {GOALS['best']:.2f}  {verdict(score >= GOALS['best'])}")
    print(f"{'kept candidates: states':34} {', '.join(f'{k} {v}' for k, v in trials.state.value_counts().items()):>24}")
    tau = f"{num(f['tau'])} [{num(f['tau_low'])}, {num(f['tau_high'])}]"
    print(f"{'Kendall tau vs ' + format(f['budget_factor'], 'g') + 'x budget':34} {tau:>24}  goal >= {GOALS['tau']}  "
          f"{verdict(f['tau'] is not None and f['tau'] >= GOALS['tau'])}")
    spread = f["spread_over_noise_short"]
    print(f"{'spread / seed std (proxy budget)':34} {num(spread, '.1f') + 'x':>24}  goal >= {GOALS['spread']:g}x  "
          f"{verdict(spread is not None and spread >= GOALS['spread'])}")
    regret = f["regret"]
    noise = regret_noise_words(regret, f.get("regret_beyond_noise"))
    print(f"{'top-1 regret':34} {num(None if regret is None else 100 * regret, '.1f') + ' points':>24}  "
          f"goal <= {100 * GOALS['regret']:g} point  {verdict(regret is not None and regret <= GOALS['regret'])}"
          + (f", {noise}" if noise else ""))
    leaders = f"{f.get('leaders_short')} proxy, {f.get('leaders_long')} long"
    print(f"{'leaders (within noise of the best)':34} {leaders:>24}  of {f['n_candidates']} candidates")
    agreement = ", ".join(num(t) for t in f["epoch_agreement"])
    print(f"{'epoch-to-final tau (proxy epochs)':34} {agreement:>24}  trusted from epoch {f['trusted_from_epoch']}")
    margin = num(None if best.get("margin") is None else 100 * best["margin"], ".1f") + " points"
    print(f"{'best: margin over runner-up':34} {margin:>24}  "
          f"verdict {best.get('verdict')}")
    print(f"fidelity took {fidelity_wall:.0f} s; details in {run_dir / 'fidelity.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
