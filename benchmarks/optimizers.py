"""Which optimizer? BBT's cpu_quick problem on SST-2 and AG News at 300 API calls, searched by CMA-ES,
random search, fireworks and nevergrad's DE, PSO, (1+1)-ES, TBPSA and NGOpt, over seeds 13, 42, 100, in fp32
(``bbtkit.course.optimizer_table``; chapter 3 loads the table, the README shows it).

    python benchmarks/optimizers.py [--optimizers ...] [--tasks ...] [--seeds ...] [--deadline-min M]

Cells are cached under runs/optimizers/ and skipped when present; SST-2 uses chapter 3's "Overall" template.
"""
from __future__ import annotations

import argparse
import time

import bbtkit as bk
from bbtkit.course import leaderboard as lb, optimizer_table as ot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--optimizers", nargs="+", default=list(ot.OPTIMIZERS))
    ap.add_argument("--tasks", nargs="+", default=list(ot.TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(lb.SEEDS))
    ap.add_argument("--deadline-min", type=float, default=None, help="start no new cell after this many minutes")
    args = ap.parse_args()
    lm = bk.load_model(dtype="fp32")
    print(bk.runtime.describe(), "| computing in", lm.dtype, flush=True)
    stop_at = time.time() + 60 * args.deadline_min if args.deadline_min else float("inf")
    for task in args.tasks:
        for seed in args.seeds:
            for name in args.optimizers:
                if time.time() > stop_at:
                    print("deadline: stopping; run again to go on", flush=True)
                    return
                res = ot.run_cell(lm, name, task, seed)
                print(f"{name:10s} {task:7s} seed {seed:3d}: test {res.test_metric:.3f}  dev {res.dev_metric:.3f}  "
                      f"{res.api_calls} calls  {res.seconds / 60:.1f} min", flush=True)
    table = ot.load_table(optimizers=args.optimizers, tasks=args.tasks, seeds=args.seeds)
    for name, row in table.items():
        print(f"{ot.LABELS.get(name, name):16s}" + "".join(
            f"  {t}: {100 * e['mean']:.1f} ± {100 * e['std']:.1f} ({e['seeds']})" for t, e in row.items()))


if __name__ == "__main__":
    main()
