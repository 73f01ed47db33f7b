"""The proxy base's accuracy under variants of the training recipe, several seeds each.

    python bench/recipe.py "lr 0.006: train.lr=0.006" "no flips or crops: train.flip=false train.crop_padding=0"
    python bench/recipe.py --set data=fashion_mnist train.epochs=16 -- "no smoothing: train.label_smoothing=0"

Each variant is "name: Hydra overrides" on top of the default config (conf/) and of `--set`, which
applies to every variant; the default (`--set` alone) always comes first. Every (variant, seed)
trains the base network at its proxy size with search.proxy.train, on one torch thread, `--jobs`
at a time. Prints the validation accuracy after the last epoch per seed, the mean and sample std
over seeds, and the difference from the default in units of the default's std. It measures
accuracy, not time, so it may run beside other work.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import statistics
import sys

from common import compose, default_data, machine, proxy_model
from search.trials.workers import stop_with_parent


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, sep, overrides = text.partition(":")
    if not sep or name.strip() in ("", "default"):
        raise SystemExit(f"error: variant {text!r} is not 'name: override override ...' (name not 'default')")
    return name.strip(), overrides.split()


@functools.lru_cache(maxsize=2)
def config_and_data(overrides: tuple[str, ...]):
    """Rendered once per variant in each pool process, not once per seed."""
    cfg = compose(*overrides)
    return cfg, *default_data(cfg)


def train_one(job: tuple[str, tuple[str, ...], int]) -> tuple[str, int, float]:
    import torch

    from search.proxy import train

    name, overrides, seed = job
    torch.set_num_threads(1)
    cfg, train_data, val_data = config_and_data(overrides)
    torch.manual_seed(seed)  # as the search seeds each training (search/trials/loop.py)
    result = train(proxy_model(cfg, train_data), train_data, val_data, cfg.train, torch.device("cpu"), seed=seed)
    print(f"  {name}, seed {seed}: accuracy by epoch {result.accuracies}", file=sys.stderr, flush=True)
    return name, seed, result.accuracies[-1]


def main(argv=None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help='"name: override ..." (Hydra overrides)')
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="trainings at a time, one thread each")
    parser.add_argument("--set", nargs="*", default=[], metavar="OVERRIDE", help="Hydra overrides for every variant")
    args = parser.parse_args(argv)
    variants = {name: (*args.set, *overrides) for name, overrides in [("default", []), *map(parse_variant, args.variants)]}
    for name, overrides in variants.items():  # a wrong override fails here, in one line, before any training
        try:
            compose(*overrides)
        except Exception as e:
            raise SystemExit(f"error: variant {name!r}: {str(e).splitlines()[0]}") from None
    jobs = [(name, overrides, seed) for name, overrides in variants.items() for seed in range(args.seeds)]
    with mp.get_context("spawn").Pool(args.jobs, initializer=stop_with_parent) as pool:  # none outlives a killed run
        done = pool.map(train_one, jobs, chunksize=1)
    scores = {name: [acc for n, _, acc in sorted(done) if n == name] for name in variants}
    base = scores["default"]
    noise = statistics.stdev(base) if len(base) > 1 else float("nan")
    width = max(map(len, variants))
    print(f"# recipe: {machine()}; the proxy base, seeds 0..{args.seeds - 1}, 1 thread each; {' '.join(args.set)}")
    print(f"{'variant':{width}} {'accuracy per seed':>24} {'mean':>6} {'std':>6} {'diff / default std':>18}")
    for name, accs in scores.items():
        std = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        mean = statistics.fmean(accs)
        cells = " ".join(f"{a:.3f}" for a in accs)
        print(f"{name:{width}} {cells:>24} {mean:6.3f} {std:6.3f} {(mean - statistics.fmean(base)) / noise:18.1f}")
    return scores


if __name__ == "__main__":
    main()
