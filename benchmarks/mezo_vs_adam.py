"""MeZO against Adam with backpropagation on the same tensors, batches, loss and number of steps:
accuracy, seconds and steps, on the embedded model (fp32). Notebook 08 reads the saved runs.

Each run is saved under runs/zo/<mezo|backprop>-<params>/<task>-<seed>/ and skipped when present.
Peak memory is benchmarks/zo_memory.py's job (separate processes).

    python benchmarks/mezo_vs_adam.py [--params all prefix] [--task sst2] [--seeds 42] [--budget 100]
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import bbtkit as bk
from bbtkit.whitebox.mezo import MeZOConfig, run_backprop, run_mezo

ROOT = Path(__file__).resolve().parents[1] / "runs" / "zo"


def cached(kind: str, params: str, task: str, seed: int, root: Path = ROOT):
    path = root / f"{kind}-{params}" / f"{task}-{seed}"
    return bk.load_result(path) if (path / "result.json").exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", nargs="+", default=["all", "prefix"], choices=("all", "lora", "prefix"))
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--seeds", nargs="+", type=int, default=[42])
    ap.add_argument("--budget", type=int, default=None, help="forward passes for MeZO (default: cpu_quick's)")
    ap.add_argument("--test-size", type=int, default=500)
    args = ap.parse_args()
    lm = bk.load_model(dtype="fp32")
    print(lm, flush=True)
    for seed in args.seeds:
        split = bk.load_split(args.task, seed=seed, test_size=args.test_size)
        manual = bk.evaluate(lm, args.task, split.test)
        for params in args.params:
            cfg = MeZOConfig.cpu_quick(seed=seed, params=params)
            cfg = dataclasses.replace(cfg, budget=args.budget) if args.budget else cfg
            for kind, run in (("mezo", lambda: run_mezo(lm, args.task, split, cfg, display=False)),
                              ("backprop", lambda: run_backprop(lm, args.task, split, cfg))):
                res = cached(kind, params, args.task, seed)
                if res is None:
                    res = run()
                    res.extra.update(test_size=len(split.test), manual_test=manual)
                    res.save(ROOT / f"{kind}-{params}" / f"{args.task}-{seed}", overwrite=True)
                steps = res.stop.get("steps")
                print(f"{kind:8s} {params:6s} seed {seed}: test {res.test_metric:.3f} (manual {manual:.3f}) dev "
                      f"{res.dev_metric:.3f} | {steps} steps, {res.api_calls} forward passes, {res.seconds / 60:.1f} min",
                      flush=True)


if __name__ == "__main__":
    main()
