"""Training images/second of the proxy loop vs a plain tutorial loop, per base, in one run.

    python bench/throughput.py [--quick] [--bases mobilenetv2 resnet18] [--device cuda [--paper]]

Same model architecture, same images at the proxy resolution, same batch size and number of
steps; both warm up first, then the best of `--repeats` interleaved timings counts (robust to a
neighbour's load). Goal: ours >= 2x the reference for mobilenetv2 and efficientnet_b0, >= 1x for all.
`--paper` measures each base at a paper-like size instead (full width, the published network at
224 px, batch 256), the GPU goal: >= 1.5x for mobilenetv2 and efficientnet_b0.
"""

from __future__ import annotations

import argparse
import time

import torch
from omegaconf import OmegaConf

from common import BASES, compose, default_data, machine, proxy_model
from reference import train_reference
from search.proxy import PreparedData, train

GOALS = {"mobilenetv2": 2.0, "efficientnet_b0": 2.0}  # the rest: never slower (1.0)
PAPER_GOALS = {"mobilenetv2": 1.5, "efficientnet_b0": 1.5}
PAPER_SIZE = ["base.variant=imagenet", "base.width=1.0", "base.depth=1.0", "base.resolution=224",
              "train.batch_size=256", "data.synthetic_size=3600"]


def ours(cfg, train_data, val_data, steps: int, device: str = "cpu") -> float:
    """Images/second of search.proxy.train over `steps` training steps (its own train timer, which
    ends after the epoch's one host sync, so queued GPU work is counted)."""
    t = OmegaConf.merge(cfg.train, {"epochs": 1, "max_images": steps * cfg.train.batch_size, "bn_images": 0})
    result = train(proxy_model(cfg, train_data), train_data, val_data, t, torch.device(device), seed=0)
    return result.images_seen / result.train_seconds


def reference(cfg, train_data, steps: int, device: str = "cpu") -> float:
    model = proxy_model(cfg, train_data)
    start = time.perf_counter()
    seen = train_reference(model, train_data, cfg.train, steps, device)  # loss.item() every step syncs
    return seen / (time.perf_counter() - start)


def measure_base(base: str, steps: int, repeats: int, device: str, size: list[str]) -> tuple[float, float]:
    cfg = compose(f"base={base}", *size)
    train_data, val_data = default_data(cfg, device)
    val_data = PreparedData(val_data.images[:128], val_data.labels[:128], val_data.mean, val_data.std)
    ours(cfg, train_data, val_data, 3, device)  # warm-up: allocator, oneDNN primitives, cuDNN autotuning
    reference(cfg, train_data, 3, device)
    best_ours = best_ref = 0.0
    for _ in range(repeats):
        best_ours = max(best_ours, ours(cfg, train_data, val_data, steps, device))
        best_ref = max(best_ref, reference(cfg, train_data, steps, device))
    return best_ours, best_ref


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="+", default=list(BASES))
    parser.add_argument("--steps", type=int, default=24, help="training steps timed (24 = 3072 images at batch 128)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="6 steps, 1 repeat")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--paper", action="store_true", help="full-width networks at 224 px, batch 256")
    args = parser.parse_args(argv)
    steps, repeats = (6, 1) if args.quick else (args.steps, args.repeats)
    # batch 128 at the proxy size (the default's until 2026-11-23), so the figures stay comparable
    batch = 256 if args.paper else 128
    size, goals = (PAPER_SIZE, PAPER_GOALS) if args.paper else ([f"train.batch_size={batch}"], GOALS)
    print(f"# throughput on {args.device}: {machine()}; {steps} steps of batch {batch}"
          f"{' at 224 px, full width' if args.paper else ' at the proxy size'}, best of {repeats}")
    print(f"{'base':16} {'ours img/s':>10} {'ref img/s':>10} {'ratio':>6} {'goal':>5}  met")
    rows = []
    for base in args.bases:
        fast, slow = measure_base(base, steps, repeats, args.device, size)
        goal = goals.get(base, 1.0)
        ratio = fast / slow
        print(f"{base:16} {fast:10.0f} {slow:10.0f} {ratio:6.2f} {goal:5.1f}  {'yes' if ratio >= goal else 'NO'}", flush=True)
        rows.append(dict(base=base, ours=fast, reference=slow, ratio=ratio, goal=goal, met=ratio >= goal))
    return rows


if __name__ == "__main__":
    main()
