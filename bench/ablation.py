"""A/B of the proxy loop's speed options, interleaved in one process: what each one is worth.

    python bench/ablation.py [--bases mobilenetv2 resnet18] [--steps 12] [--repeats 3]

Each variant changes one thing against the default proxy setting; the best of `--repeats`
interleaved timings counts. Variants: channels-last off, 1 thread instead of all cores.
"""

from __future__ import annotations

import argparse

import torch
from omegaconf import OmegaConf

from common import compose, default_data, machine
from search.proxy import PreparedData
from throughput import ours

VARIANTS = {  # name: (train overrides, torch threads or None for the default)
    "default": ({}, None),
    "no channels-last": ({"channels_last": False}, None),
    "1 thread": ({}, 1),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="+", default=["mobilenetv2", "efficientnet_b0", "resnet18"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    print(f"# ablation: {machine()}; {args.steps} steps, best of {args.repeats}; img/s (ratio to default)")
    for base in args.bases:
        cfg = compose(f"base={base}")
        train_data, val_data = default_data(cfg)
        val_data = PreparedData(val_data.images[:128], val_data.labels[:128], val_data.mean, val_data.std)
        best = dict.fromkeys(args.variants, 0.0)
        ours(cfg, train_data, val_data, 3)  # warm-up
        for _ in range(args.repeats):
            for name in args.variants:
                overrides, n = VARIANTS[name]
                torch.set_num_threads(n or threads)
                variant = OmegaConf.merge(cfg, {"train": overrides})
                best[name] = max(best[name], ours(variant, train_data, val_data, args.steps))
        torch.set_num_threads(threads)
        cells = "  ".join(f"{n} {v:.0f} ({v / best['default']:.2f})" for n, v in best.items())
        print(f"{base:16} {cells}", flush=True)


if __name__ == "__main__":
    main()
