"""Seconds per API call over a whole BBTv2 run, without the layer cache and with it, in one process.

Three runs of the same seeded BBTv2 configuration (same results, checked), differing only in
``cache``: "none" (the full forward every call), "context" (the input's keys and values computed
once, as BBT does) and "layers" (that, plus only layers l..L-1 run while layer l is tuned).
A call's time includes its share of filling the layer cache. Prints, too, how far the runs' results are
apart (float rounding only). Prints the ratios; ratios from one
run are what to compare on a noisy machine, not absolute seconds.

    python benchmarks/bbtv2_speed.py [--task sst2] [--seed 42] [--budget 400] [--set k=v ...]
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

import bbtkit as bk


def per_call(res) -> float:
    """Mean seconds per API call, the layer cache's filling included."""
    return res.extra["seconds_per_call"] + res.extra["cache_seconds"] / res.api_calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--caches", nargs="+", default=["none", "context", "layers"])
    ap.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. n_prompt_tokens=5")
    args = ap.parse_args()
    lm = bk.load_model()
    split = bk.load_split(args.task, seed=args.seed)
    cfg = dataclasses.replace(bk.BBTv2Config.cpu_quick(seed=args.seed), budget=args.budget)
    cfg = dataclasses.replace(cfg, **{k: type(getattr(cfg, k))(v) for k, v in (s.split("=") for s in args.set)})
    print(f"{lm} | {args.task} seed {args.seed}: {len(split.train)} training examples | {cfg}")
    runs = {}
    for cache in args.caches:
        res = bk.run_bbtv2(lm, args.task, split, dataclasses.replace(cfg, cache=cache), display=False,
                           evaluate_test=False)
        runs[cache] = res
        print(f"cache={cache:8s} {per_call(res):.3f} s per API call ({res.api_calls} calls, "
              f"{res.seconds / 60:.1f} min for the whole run, dev evaluations included)", flush=True)
    first = next(iter(runs.values()))
    for cache, res in runs.items():  # the caches are speed-ups only: the same search (up to float rounding)
        print(f"cache={cache:8s} final train loss {res.extra['train_loss']:.5f}, dev {res.dev_metric:.3f}, "
              f"max |z - z(cache={next(iter(runs))})| = {np.abs(res.z - first.z).max():.2e}")
    if "layers" in runs:
        for base in (c for c in runs if c != "layers"):
            print(f"speed-up of the layer cache over cache={base}: {per_call(runs[base]) / per_call(runs['layers']):.2f}x")
        by_layer = {}
        for cache in runs:
            for h in runs[cache].history:
                if h["layer"] is not None and h["dev_metric"] is None:
                    by_layer.setdefault(h["layer"], {}).setdefault(cache, []).append(h["seconds"] / cfg.popsize)
        print("\nseconds per call by tuned layer (generations without a dev evaluation):")
        print("layer " + " ".join(f"{c:>9s}" for c in runs))
        for layer in sorted(by_layer):
            print(f"{layer:5d} " + " ".join(f"{np.mean(by_layer[layer].get(c, [np.nan])):9.3f}" for c in runs))


if __name__ == "__main__":
    main()
