"""Manual prompt against BBT (or BBTv2) cpu_quick on SST-2 and AG News, over seeds 13, 42, 100.

Prints mean ± std of the test metric and the CPU minutes of each run, and saves every run
under runs/<method>/<task>-<seed>/ so that notebooks can load them.

    python benchmarks/bbt_table.py [--method bbt|bbtv2] [--tasks sst2 agnews] [--seeds 13 42 100]
"""
from __future__ import annotations

import argparse
import dataclasses
import numpy as np

import bbtkit as bk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=[m for m, spec in bk.METHODS.items() if spec.tunes], default="bbt")
    ap.add_argument("--tasks", nargs="+", default=["sst2", "agnews"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 42, 100])
    ap.add_argument("--test-size", type=int, default=1000, help="fixed test subset (SST-2's 872 are all used)")
    ap.add_argument("--out", help="where runs are saved (default: runs/<method>)")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides, e.g. loss=hinge sigma=0.5")
    ap.add_argument("--template", help="causal template to use instead of the task's default (one task only)")
    ap.add_argument("--words", nargs="+", help="label words that go with --template")
    args = ap.parse_args()
    out = args.out or f"runs/{args.method}"
    method = bk.METHODS[args.method]
    lm = bk.load_model()
    rows = {}
    for name in args.tasks:
        task = bk.get_task(name)
        if args.template:
            task = task.with_template(args.template.replace("\\n", "\n"), lm.family, args.words)
        manual, tuned, minutes = [], [], []
        for seed in args.seeds:
            split = bk.load_split(name, seed=seed, test_size=args.test_size)
            cfg = method.preset(name, seed)
            overrides = {k: type(getattr(cfg, k))(v) if getattr(cfg, k) is not None else float(v)
                         for k, v in (s.split("=") for s in args.set)}
            cfg = dataclasses.replace(cfg, **overrides)
            manual.append(bk.evaluate(lm, task, split.test))
            res = method.run(lm, task, split, cfg, display=False)
            minutes.append(res.seconds / 60)
            tuned.append(res.test_metric)
            res.extra.update(manual_test=manual[-1], test_size=len(split.test), template=task.template(lm.family),
                             words=task.words(lm.family))
            res.save(f"{out}/{name}-{seed}", overwrite=True)
            print(f"{name} seed {seed}: manual {manual[-1]:.3f}  {args.method} {res.test_metric:.3f} (dev {res.dev_metric:.3f}, "
                  f"{res.api_calls} calls, {minutes[-1]:.1f} min, "
                  f"{res.extra['seconds_per_call']:.3f} s/call)", flush=True)
        rows[name] = (manual, tuned, minutes, len(split.test))
    print(f"\n| task | test examples | manual prompt | {args.method} cpu_quick | minutes per run (2-core CPU) |")
    print("|---|---|---|---|---|")
    for name, (manual, tuned, minutes, n_test) in rows.items():
        print(f"| {name} | {n_test} | {100 * np.mean(manual):.1f} ± {100 * np.std(manual):.1f} | "
              f"{100 * np.mean(tuned):.1f} ± {100 * np.std(tuned):.1f} | {np.mean(minutes):.1f} |")


if __name__ == "__main__":
    main()
