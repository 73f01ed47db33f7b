"""What saving each epoch's training state costs, per base, against the epoch it follows.

    python bench/checkpoint.py [--bases mobilenetv2 resnet18] [--device cuda]

Each base at its default proxy size trains one epoch of the default budget; then its state
(model, AdamW moments, schedule, generators) is saved and restored `--repeats` times, as
search/checkpoint.py does after every epoch and on resume. Goal: a save costs < 2% of an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from omegaconf import OmegaConf

from common import BASES, compose, default_data, machine, proxy_model
from search.checkpoint import Checkpoint
from search.proxy import TrainResult, make_optimizer, train

GOAL = 0.02


def measure(base: str, repeats: int, device: str) -> dict:
    cfg = compose(f"base={base}")
    train_data, val_data = default_data(cfg, device)
    t = OmegaConf.merge(cfg.train, {"epochs": 1})
    model = proxy_model(cfg, train_data)
    result = train(model, train_data, val_data, t, torch.device(device), seed=0)
    epoch = result.train_seconds + result.eval_seconds
    optimizer = make_optimizer(model, t)  # fresh moments hold as many numbers as trained ones
    for p in model.parameters():
        optimizer.state[p] = {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler,
             "scaler": torch.amp.GradScaler("cuda", enabled=False)}
    generator = torch.Generator(device=device).manual_seed(0)
    saves, restores = [], []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Checkpoint(folder, "bench", base, 0, 1)
        for _ in range(repeats):
            start = time.perf_counter()
            checkpoint.save(parts, generator, result)
            saves.append(time.perf_counter() - start)
            start = time.perf_counter()
            checkpoint.restore(parts, generator, TrainResult())
            restores.append(time.perf_counter() - start)
        size = checkpoint.path.stat().st_size
    return {"epoch": epoch, "save": statistics.median(saves), "restore": statistics.median(restores), "mb": size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bases", nargs="+", default=list(BASES), choices=BASES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"checkpoint cost per epoch at the default proxy budget ({machine()}); goal: save < {GOAL:.0%} of an epoch")
    print(f"{'base':<16}{'epoch s':>9}{'save s':>9}{'restore s':>11}{'file MB':>9}{'save/epoch':>12}")
    for base in args.bases:
        m = measure(base, args.repeats, args.device)
        ratio = m["save"] / m["epoch"]
        verdict = "ok" if ratio < GOAL else "MISSED"
        print(f"{base:<16}{m['epoch']:>9.2f}{m['save']:>9.3f}{m['restore']:>11.3f}{m['mb']:>9.1f}{ratio:>11.2%} {verdict}")


if __name__ == "__main__":
    main()
