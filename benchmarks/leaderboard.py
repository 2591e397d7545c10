"""The competition-style leaderboard (notebook 07): every method on SST-2, DBPedia, SNLI, QQP and
QNLI over seeds 13, 42, 100, with the report's budgets scaled for a CPU.

Each run is cached under runs/leaderboard/<setting>/<method>/<task>-<seed>/ (the setting names the model,
dtype, test size and scale) and skipped when present, so the
table can be filled over several sittings; it prints the table from whatever is cached.

    python benchmarks/leaderboard.py [--methods ...] [--tasks ...] [--seeds ...] [--scale 0.1] [--device cuda]
"""
from __future__ import annotations

import argparse

import bbtkit as bk
from bbtkit import leaderboard as lb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(lb.METHODS), choices=list(lb.METHODS))
    ap.add_argument("--tasks", nargs="+", default=list(lb.TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(lb.SEEDS))
    ap.add_argument("--scale", type=float, default=lb.CPU_SCALE, help="fraction of the report's API budgets")
    ap.add_argument("--root", default=str(lb.ROOT))
    ap.add_argument("--recompute", action="store_true", help="run again even where a result is cached")
    ap.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    ap.add_argument("--dtype", default="fp32", help="fp32 (default: the committed table's), bf16 or auto")
    args = ap.parse_args()
    lm = bk.load_model(device=args.device, dtype=args.dtype)
    print(lm, flush=True)
    for task in args.tasks:
        for method in args.methods:
            for seed in args.seeds:
                res = lb.run_entry(lm, method, task, seed, scale=args.scale, root=args.root, recompute=args.recompute)
                print(f"{method:12s} {task:8s} seed {seed:3d}: test {res.test_metric:.3f}  dev {res.dev_metric:.3f}  "
                      f"{res.api_calls:5d} calls  {res.seconds / 60:5.1f} min", flush=True)
    table = bk.load_leaderboard(args.root, stats=True, setting=lb.setting(lm, args.scale, lb.TEST_SIZE))
    tasks = [t for t in lb.TASKS if any(t in row for row in table.values())]
    print("\n| method | " + " | ".join(tasks) + " | average |")
    print("|---|" + "---|" * (len(tasks) + 1))
    for method, row in table.items():
        cells = [f"{100 * row[t]['mean']:.1f} ± {100 * row[t]['std']:.1f} ({row[t]['seeds']})" if t in row else "—"
                 for t in tasks]
        avg = f"{100 * sum(row[t]['mean'] for t in tasks) / len(tasks):.1f}" if all(t in row for t in tasks) else "—"
        print(f"| {lb.METHODS[method]} | " + " | ".join(cells) + f" | {avg} |")


if __name__ == "__main__":
    main()
