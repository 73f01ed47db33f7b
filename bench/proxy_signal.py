"""Does the proxy training separate the candidates, and does its ranking survive a longer training?

For a fixed list of candidate networks (the kept rows of a dry run's candidates.csv) plus the
proxy base itself ("base", alpha = beta = gamma = 1, reported apart from the ranking), this
trains every network with several seeds at a "proxy" budget and at a "long" budget (`--factor`
times the epochs, same images per epoch), under the training settings given, and prints per
candidate mean +- std at each budget and the ranking statistics: Kendall tau-b between proxy and
long means, top-1 regret, pooled seed std, spread of the means over that std, best and base
accuracy, and per proxy epoch the tau between that epoch's accuracy (first seed) and the long mean.

    python run_search.py search.dry_run=true name=sig runs_dir=/tmp/sigruns
    python bench/proxy_signal.py /tmp/sigruns/sig --seeds 3 --long-seeds 2 --factor 4 \
        --set epochs=4 max_images=3072 lr=0.05 --data synthetic_size=10000 num_classes=10 \
        --device cuda --jobs 8 --out results.csv

Start values: the TrainConfig / DataConfig dataclass defaults (NOT the run's config.yaml), then
`--set` / `--data` overrides. One CSV row per training is appended as each finishes, so partial
results survive; `--summary-only` re-prints the summary of an existing --out file. On CUDA,
search.proxy.train always runs under bf16 autocast (what the search itself uses there); `--fp32`
only turns TF32 off for the remaining fp32 ops, so compare with CPU numerics on the CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as `python bench/proxy_signal.py` from anywhere

import search  # noqa: E402,F401  (before torch: the OpenMP wait policy the search runs with)
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from models import build_model, scaled_spec  # noqa: E402
from search.data import DataConfig, load_splits  # noqa: E402
from search.config import TrainConfig  # noqa: E402
from search.proxy import channel_stats, prepare, train  # noqa: E402
from search.evidence import bootstrap_tau_interval, kendall_tau  # noqa: E402
from search.trials.workers import stop_with_parent  # noqa: E402

TRAIN_DEFAULTS = dataclasses.asdict(TrainConfig())

COLUMNS = ["key", "budget", "seed", "epochs", "depth", "width", "resolution", "accuracy", "accuracies", "loss",
           "seconds", "error", "settings"]


def parse_pairs(pairs, defaults: dict, what: str) -> dict:
    """`k=v` strings -> {k: YAML-parsed v}; every k must be a field of `defaults`."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or key not in defaults:
            sys.exit(f"{what}: {pair!r} is not key=value with key one of: {', '.join(defaults)}")
        out[key] = yaml.safe_load(value)
    return out


def load_candidates(args) -> list[dict]:
    """Kept rows of candidates.csv (scaled by --width-scale/--resolution-scale), then the base."""
    path = Path(args.candidates or Path(args.run_dir) / "candidates.csv")
    table = pd.read_csv(path)
    table = table[table["kept"].astype(str).str.lower() == "true"]
    rows = [dict(key=r.key, base=r.base, variant=r.variant, depth=float(r.depth), width=float(r.width),
                 resolution=int(r.resolution)) for r in table.itertuples()]
    config = Path(args.run_dir) / "config.yaml" if args.run_dir else path.parent / "config.yaml"
    if config.exists():
        b = yaml.safe_load(config.read_text())["base"]
        rows.append(dict(key="base", base=b["name"], variant=b["variant"], depth=float(b["depth"]),
                         width=float(b["width"]), resolution=int(b["resolution"])))
    else:
        print(f"note: no {config}: no base reference row")
    for r in rows:
        r["width"] = round(r["width"] * args.width_scale, 10)
        r["resolution"] = max(1, round(r["resolution"] * args.resolution_scale))
    return rows


_STATE: dict = {}  # per worker process: data, device, prepared splits by resolution


def init_worker(data_cfg: dict, device: str, threads: int, fp32: bool) -> None:
    stop_with_parent()  # a killed run leaves no process training on
    torch.set_num_threads(threads)
    train_split, val_split = load_splits(DataConfig(**data_cfg))
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    if fp32 and dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    _STATE.update(train=train_split, val=val_split, stats=channel_stats(train_split.images), device=dev, cache={})


def run_job(job: dict) -> dict:
    """Train one (candidate, budget, seed); returns its CSV row (error set instead of raising)."""
    c, cfg, s = job["cand"], argparse.Namespace(**job["cfg"]), _STATE
    res = c["resolution"]
    if res not in s["cache"]:
        s["cache"][res] = tuple(prepare(split, res, s["stats"], s["device"]) for split in (s["train"], s["val"]))
    row = dict(key=c["key"], budget=job["budget"], seed=job["seed"], epochs=cfg.epochs, depth=c["depth"],
               width=c["width"], resolution=res, settings=job["settings"], error="")
    start = time.perf_counter()
    try:
        torch.manual_seed(job["seed"])  # as search/trials/loop.py: the init seed = the training seed
        model = build_model(scaled_spec(c["base"], c["depth"], c["width"], c["variant"]),
                            s["train"].num_classes, s["train"].channels)
        result = train(model, *s["cache"][res], cfg, s["device"], job["seed"])
        row.update(accuracy=result.accuracy, accuracies=json.dumps([round(a, 5) for a in result.accuracies]),
                   loss=result.losses[-1])
    except Exception as e:  # a diverged or failed training is a result too
        row.update(accuracy=math.nan, accuracies="[]", loss=math.nan, error=f"{type(e).__name__}: {e}"[:200])
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def summarize(df: pd.DataFrame, num_classes=None) -> None:
    if df["settings"].nunique() > 1:
        print(f"warning: {df['settings'].nunique()} different settings pooled in these rows")
    g = df.groupby(["key", "budget"], sort=False)["accuracy"]
    stats = pd.DataFrame({"mean": g.mean(), "std": g.std(), "n": g.count()}).unstack("budget")
    table = pd.DataFrame(index=stats.index)
    for b in ("proxy", "long"):
        if ("mean", b) in stats:
            table[f"{b}"] = [f"{m:.3f} +- {s:.3f} ({n})" for m, s, n in
                             zip(stats["mean", b], stats["std", b].fillna(0), stats["n", b])]
            table[f"{b}_rank"] = stats["mean", b].drop("base", errors="ignore").rank(ascending=False, method="min").astype("Int64")
    info = df.drop_duplicates("key").set_index("key")[["depth", "width", "resolution"]]
    print(info.join(table).sort_values("proxy_rank" if "proxy_rank" in table else "key").to_string(na_rep="-"))
    failed = df[df["error"].notna() & (df["error"].astype(str) != "")]
    if len(failed):
        print(f"\n{len(failed)} failed trainings, e.g. {failed.iloc[0]['key']}: {failed.iloc[0]['error']}")

    cand = df[df["key"] != "base"]
    def means(b):
        return cand[cand["budget"] == b].groupby("key")["accuracy"].mean()
    def pooled(b):  # sqrt of the mean within-candidate variance (candidates with >= 2 seeds)
        v = cand[cand["budget"] == b].groupby("key")["accuracy"].var().dropna()
        return math.sqrt(v.mean()) if len(v) else math.nan
    p, l = means("proxy"), means("long")
    keys = p.index.intersection(l.index)
    print(f"\ncandidates: {cand['key'].nunique()}" + (f"   chance: {1 / num_classes:.3f}" if num_classes else ""))
    for b, m in (("proxy", p), ("long", l)):
        sd = pooled(b)
        base = df[(df["key"] == "base") & (df["budget"] == b)]["accuracy"].mean()
        print(f"{b:>5}: best mean {m.max():.3f}  base {base:.3f}  spread {m.max() - m.min():.3f}  "
              f"pooled seed std {sd:.3f}  spread/std {(m.max() - m.min()) / sd:.2f}")
    if len(keys) >= 2:
        p, l = p[keys], l[keys]
        def per_seed(b):  # (candidates, seeds) in `keys` order, NaN where a seed is missing
            return cand[cand["budget"] == b].pivot_table(index="key", columns="seed", values="accuracy").reindex(keys)
        low, high = bootstrap_tau_interval(per_seed("proxy").to_numpy(), per_seed("long").to_numpy())
        print(f"Kendall tau(proxy mean, long mean): {kendall_tau(p.to_numpy(), l.to_numpy()):+.3f} "
              f"[{low:+.2f}, {high:+.2f}] (bootstrap 95% over seeds)   "
              f"top-1 regret: {100 * (l.max() - l[p.idxmax()]):.2f} points (proxy picks {p.idxmax()}, "
              f"long best {l.idxmax()}" + (f"; {(p == p.max()).sum()} tied at the proxy max" if (p == p.max()).sum() > 1 else "") + ")")
        first = cand[(cand["budget"] == "proxy") & (cand["seed"] == cand["seed"].min())].set_index("key")
        curves = first["accuracies"].map(json.loads).reindex(keys).dropna()
        epochs = max((len(c) for c in curves), default=0)
        taus = [kendall_tau([c[e] if len(c) > e else math.nan for c in curves], l[curves.index].to_numpy())
                for e in range(epochs)]
        print("tau(proxy epoch e accuracy, first seed; long mean): "
              + "  ".join(f"e{e + 1} {t:+.3f}" for e, t in enumerate(taus)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", nargs="?", help="a dry run's folder (candidates.csv, config.yaml)")
    ap.add_argument("--candidates", help="candidates.csv path (default RUN_DIR/candidates.csv)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per candidate at the proxy budget")
    ap.add_argument("--long-seeds", type=int, default=2, help="seeds per candidate at the long budget")
    ap.add_argument("--factor", type=float, default=4, help="long budget = factor x epochs (same images/epoch)")
    ap.add_argument("--set", nargs="*", default=[], metavar="K=V", help="TrainConfig overrides")
    ap.add_argument("--data", nargs="*", default=[], metavar="K=V", help="DataConfig overrides")
    ap.add_argument("--width-scale", type=float, default=1.0, help="multiply every width (base included)")
    ap.add_argument("--resolution-scale", type=float, default=1.0, help="multiply every resolution")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--fp32", action="store_true", help="CUDA: TF32 off (bf16 autocast of search.proxy stays)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel worker processes (spawn)")
    ap.add_argument("--out", help="CSV to append to (default RUN_DIR/proxy_signal.csv)")
    ap.add_argument("--summary-only", action="store_true", help="only summarize the rows already in --out")
    args = ap.parse_args()
    if not (args.run_dir or args.candidates):
        ap.error("give RUN_DIR or --candidates")
    out = Path(args.out or Path(args.run_dir or Path(args.candidates).parent) / "proxy_signal.csv")
    data_cfg = dataclasses.asdict(DataConfig())
    data_cfg.update(parse_pairs(args.data, data_cfg, "--data"))
    if args.summary_only:
        return summarize(pd.read_csv(out), data_cfg["num_classes"])

    overrides = parse_pairs(args.set, TRAIN_DEFAULTS, "--set")
    cfg = {**TRAIN_DEFAULTS, **overrides, "device": args.device}
    long_cfg = {**cfg, "epochs": max(1, round(cfg["epochs"] * args.factor))}
    settings = json.dumps(dict(set=overrides, data=parse_pairs(args.data, data_cfg, "--data"), factor=args.factor,
                               width_scale=args.width_scale, resolution_scale=args.resolution_scale,
                               fp32=args.fp32), sort_keys=True)
    cands = sorted(load_candidates(args), key=lambda c: c["resolution"])
    jobs = [dict(cand=c, budget=b, cfg=bc, seed=cfg["seed"] + k, settings=settings)
            for b, bc, n in (("long", long_cfg, args.long_seeds), ("proxy", cfg, args.seeds))
            for c in cands for k in range(n)]  # long ones first: the slowest start early
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = cfg["threads"] or max(1, cores // args.jobs)
    init = (data_cfg, args.device, threads, args.fp32)
    print(f"{len(cands)} networks x ({args.seeds} proxy seeds x {cfg['epochs']} epochs + {args.long_seeds} long "
          f"x {long_cfg['epochs']}) = {len(jobs)} trainings, {args.jobs} processes x {threads} threads -> {out}")
    if args.fp32 and args.device != "cpu":
        print("note: on CUDA search.proxy.train still uses bf16 autocast (as the search does); --fp32 only disables TF32")

    new = not out.exists() or out.stat().st_size == 0
    rows, start = [], time.perf_counter()
    with open(out, "a", newline="") as f:
        def record(row):
            rows.append(row)
            pd.DataFrame([row], columns=COLUMNS).to_csv(f, header=new and len(rows) == 1, index=False)
            f.flush()
            print(f"[{len(rows)}/{len(jobs)} {time.perf_counter() - start:.0f}s] {row['key']} {row['budget']} "
                  f"seed {row['seed']}: {row['accuracy']:.3f} ({row['seconds']:.1f}s) {row['error']}", flush=True)
        if args.jobs <= 1:
            init_worker(*init)
            for job in jobs:
                record(run_job(job))
        else:
            with mp.get_context("spawn").Pool(args.jobs, initializer=init_worker, initargs=init) as pool:
                for row in pool.imap_unordered(run_job, jobs):
                    record(row)
    print()
    summarize(pd.DataFrame(rows, columns=COLUMNS), data_cfg["num_classes"])


if __name__ == "__main__":
    main()
