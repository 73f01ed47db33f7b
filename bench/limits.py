"""Achieved training FLOP/s of the proxy loop as a share of this machine's fp32 matmul peak.

    python bench/limits.py [--quick] [--bases resnet18]

FLOPs are counted, not estimated: torch.utils.flop_counter on the forward pass of one real
training batch (2 flops per multiply-add, as for the matmul); the backward pass is twice that
(the input gradient and the weight gradient each take the forward's multiply-adds; the stem's
input gradient, a few percent, is not needed). The counter's own backward figure is not used:
it counts a depthwise conv's weight gradient as if the conv were dense (65x too much at 64
channels). Achieved = counted FLOPs per image x measured images/second of search.proxy.train.
The peak is the best of several large fp32 torch.mm in the same run.
Goals: >= 30% of the peak for the ResNet proxies, >= 10% for the depthwise-separable ones.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import BASES, compose, default_data, machine, proxy_model
from search.proxy import PreparedData
from throughput import ours

GOALS = {"resnet18": 0.30, "resnet50": 0.30}  # depthwise-separable bases: 0.10


def matmul_peak(n: int = 3072, repeats: int = 5) -> float:
    """Best fp32 FLOP/s of an (n x n) @ (n x n) torch.mm."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def step_flops(cfg, data) -> tuple[float, float]:
    """(forward, backward) FLOPs per image of one training step of the proxy model (see above)."""
    model = proxy_model(cfg, data).to(memory_format=torch.channels_last).train()
    x = ((data.images[: cfg.train.batch_size].float() - data.mean) / data.std).contiguous(
        memory_format=torch.channels_last
    )
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    forward = counter.get_total_flops() / len(x)
    return forward, 2 * forward


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", nargs="+", default=list(BASES))
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="6 steps, 1 repeat")
    args = parser.parse_args(argv)
    steps, repeats = (6, 1) if args.quick else (args.steps, args.repeats)
    peak = matmul_peak()
    print(f"# limits: {machine()}; fp32 torch.mm peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{'base':16} {'fwd MFLOP':>9} {'bwd MFLOP':>9} {'img/s':>6} {'GFLOP/s':>8} {'of peak':>7} {'goal':>5}  met")
    rows = []
    for base in args.bases:
        cfg = compose(f"base={base}")
        train_data, val_data = default_data(cfg)
        val_data = PreparedData(val_data.images[:128], val_data.labels[:128], val_data.mean, val_data.std)
        forward, backward = step_flops(cfg, train_data)
        ours(cfg, train_data, val_data, 3)  # warm-up
        speed = max(ours(cfg, train_data, val_data, steps) for _ in range(repeats))
        achieved = (forward + backward) * speed
        share, goal = achieved / peak, GOALS.get(base, 0.10)
        print(f"{base:16} {forward / 1e6:9.1f} {backward / 1e6:9.1f} {speed:6.0f} {achieved / 1e9:8.2f} "
              f"{share:7.1%} {goal:5.0%}  {'yes' if share >= goal else 'NO'}", flush=True)
        rows.append(dict(base=base, forward=forward, backward=backward, images_per_s=speed,
                         achieved=achieved, peak=peak, share=share, goal=goal, met=share >= goal))
    return rows


if __name__ == "__main__":
    main()
