"""Is a search's budget better spent on extra seeds for its close top candidates? Replayed, not trained.

    python bench/budget_split.py docs/evidence/adamw-default-2026-11-23.csv [--confirm 0 1 2 3] [--seeds S]
        [--rule once|until]

Reads per-seed accuracies that `bench/proxy_signal.py` measured (its CSV: several proxy-budget
seeds and one or more long-budget seeds per candidate; the row "base" is left out, as in the
search's ranking) and replays the default search's split exactly: every candidate trained with
one seed, then the `K` best by that seed trained with all the measured seeds and ranked by their
mean ("confirm the close top candidates"; K = 0 is a search without search.confirm_top); the pick
is the best score after that. --rule until repeats the step while the K best by score include one
not yet confirmed (what search.confirm_top does), so that the pick and its runner-up both have
every seed. --seeds S replays S seeds a confirmed candidate (the first S measured). Every
combination of first seeds is enumerated, each equally likely. Printed per K: the mean number of
extra trainings, how often the pick
is the candidate with the best mean over all proxy seeds, and the pick's long-budget mean as a
regret against the long budget's best (in points, averaged over the combinations).
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pandas as pd


def replay(proxy: np.ndarray, long_means: np.ndarray, confirm: int, until: bool = False) -> dict:
    """proxy: (candidates, seeds) accuracies; long_means: (candidates,). The K = `confirm` best by
    their first seed get the mean of all their seeds (`until`: again, while the K best by score are
    not all confirmed); the pick is the best after that."""
    n, seeds = proxy.shape
    full = proxy.mean(axis=1)
    picks, confirmed = [], []
    for first in itertools.product(range(seeds), repeat=n):
        score, done = proxy[np.arange(n), first], np.zeros(n, bool)  # fancy indexing: a new array
        while not done[top := np.argsort(-score, kind="stable")[:confirm]].all():
            score[top], done[top] = full[top], True
            if not until:
                break
        picks.append(int(np.argmax(score)))
        confirmed.append(done.sum())
    picks = np.array(picks)
    return dict(
        confirm=confirm,
        extra_trainings=float(np.mean(confirmed)) * (seeds - 1),
        p_proxy_best=float(np.mean(picks == np.argmax(full))),
        regret_points=float(100 * np.mean(long_means.max() - long_means[picks])),
    )


def tables(path: str) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(candidates x seeds) proxy accuracies, and the long budget's mean and seed count of each; no base."""
    rows = pd.read_csv(path)
    rows = rows[rows.key != "base"]
    proxy = rows[rows.budget == "proxy"].pivot(index="key", columns="seed", values="accuracy").dropna()
    long = rows[rows.budget == "long"].groupby("key").accuracy
    keys = proxy.index.intersection(long.mean().index)
    return proxy.loc[keys], long.mean().loc[keys], long.size().loc[keys]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="a bench/proxy_signal.py CSV")
    parser.add_argument("--confirm", type=int, nargs="+", default=[0, 1, 2, 3], help="K values to replay")
    parser.add_argument("--seeds", type=int, default=None, help="seeds a confirmed candidate ends with (default: all)")
    parser.add_argument("--rule", choices=("once", "until"), default="once",
                        help="confirm the K best by the first seed once, or until the K best are all confirmed")
    args = parser.parse_args(argv)
    proxy, long_means, long_seeds = tables(args.csv)
    proxy = proxy.iloc[:, : args.seeds]
    print(f"# {len(proxy)} candidates, {proxy.shape[1]} proxy seeds each; long budget: "
          f"{long_seeds.min()}-{long_seeds.max()} seed(s) a candidate")
    for key in proxy.index:
        seeds = " ".join(f"{a:.3f}" for a in proxy.loc[key])
        print(f"{key:26} proxy {seeds}  mean {proxy.loc[key].mean():.3f}  long {long_means[key]:.3f}")
    print(f"{'confirm top K':>13} {'extra trainings':>15} {'P(pick = proxy best)':>20} {'regret vs long (points)':>23}")
    results = []
    for k in args.confirm:
        r = replay(proxy.to_numpy(), long_means.to_numpy(), k, args.rule == "until")
        print(f"{k:13d} {r['extra_trainings']:15.1f} {r['p_proxy_best']:20.2f} {r['regret_points']:23.1f}")
        results.append(r)
    return results


if __name__ == "__main__":
    main()
