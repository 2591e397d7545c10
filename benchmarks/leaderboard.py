"""The competition-style leaderboard (notebook 07): every method on SST-2, DBPedia, SNLI, QQP and
QNLI over seeds 13, 42, 100, with the report's budgets scaled for a CPU.

Each run is cached under runs/leaderboard/<setting>/<method>/<task>-<seed>/ (the setting names the model,
dtype, test size and scale) and skipped when present, so the
table can be filled over several sittings; it prints the table from whatever is cached.

    python benchmarks/leaderboard.py [--methods ...] [--tasks ...] [--seeds ...] [--scale 0.1] [--device cuda]
        [--workers N] [--deadline-min M] [--ray [ADDRESS]] [--cpus-per-cell N] [--gpus-per-cell G]

--workers N runs the missing cells in N processes that share the device, longest first: a 135M model
leaves a GPU mostly idle, so on one GPU 8 workers fill the table several times faster than one.
--deadline-min M starts no new cell after M minutes (what finished is cached; run again to go on).
--ray [ADDRESS] runs each missing cell as a Ray task on the cluster at ADDRESS (none: this machine's, or a
new local one), one GPU per cell where it has GPUs (--gpus-per-cell 0.25 packs four), else --cpus-per-cell;
the driver saves each result as it arrives (bbtkit.course.fan_out; needs pip install -e ".[cluster]").
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import bbtkit as bk
from bbtkit.course import fan_out, leaderboard as lb
from bbtkit.model.embedded import EMBEDDED

_LM = None  # one model per worker process


def _start_worker(device: str, dtype: str, threads: int) -> None:
    global _LM
    import torch
    torch.set_num_threads(threads)
    _LM = bk.load_model(device=device, dtype=dtype)


def _run_cell(job: tuple) -> str:
    (method, task, seed), scale, root, recompute, stop_at = job
    if time.time() > stop_at:
        return f"{method:12s} {task:8s} seed {seed:3d}: not started (deadline)"
    res = lb.run_entry(_LM, method, task, seed, scale=scale, root=root, recompute=recompute)
    return (f"{method:12s} {task:8s} seed {seed:3d}: test {res.test_metric:.3f}  dev {res.dev_metric:.3f}  "
            f"{res.api_calls:5d} calls  {res.seconds / 60:5.1f} min")


def _fill(args, lm) -> None:
    stop_at = time.time() + 60 * args.deadline_min if args.deadline_min else float("inf")
    global _LM
    if args.workers <= 1:
        _LM = lm
        for t in args.tasks:
            for m in args.methods:
                for s in args.seeds:
                    print(_run_cell(((m, t, s), args.scale, args.root, args.recompute, stop_at)), flush=True)
        return
    cells = fan_out.missing_cells(lb.setting(lm, args.scale, lb.TEST_SIZE), args.methods, args.tasks, args.seeds,
                                  args.root, args.scale, args.recompute)
    print(f"{len(cells)} cells to run in {args.workers} workers", flush=True)
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.workers)
    jobs = [(c, args.scale, args.root, args.recompute, stop_at) for c in cells]
    with mp.get_context("spawn").Pool(args.workers, _start_worker, (args.device, args.dtype, threads)) as pool:
        for i, line in enumerate(pool.imap_unordered(_run_cell, jobs, chunksize=1), 1):
            print(f"[{i}/{len(jobs)}] {line}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=list(lb.ROWS), choices=list(lb.ROWS))
    ap.add_argument("--tasks", nargs="+", default=list(lb.TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(lb.SEEDS))
    ap.add_argument("--scale", type=float, default=lb.CPU_SCALE, help="fraction of the report's API budgets")
    ap.add_argument("--root", default=str(lb.ROOT))
    ap.add_argument("--recompute", action="store_true", help="run again even where a result is cached")
    ap.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    ap.add_argument("--dtype", default="fp32", help="fp32 (default: the committed table's), bf16 or auto")
    ap.add_argument("--workers", type=int, default=1, help="processes sharing the device (GPU: 8)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per worker (default: cores / workers)")
    ap.add_argument("--deadline-min", type=float, default=None, help="start no new cell after this many minutes")
    ap.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                    help="fan the missing cells out over a Ray cluster (none: this machine's, or a new local one)")
    ap.add_argument("--cpus-per-cell", type=int, default=1, help="with --ray: CPUs per cell where there is no GPU")
    ap.add_argument("--gpus-per-cell", type=float, default=None, help="with --ray: GPUs per cell (default 1 on a GPU cluster)")
    args = ap.parse_args()
    if args.ray is not None:  # the driver loads no model: the workers do
        fan_out.fill_on_ray(bk.load_model, EMBEDDED, args.methods, args.tasks, args.seeds, scale=args.scale, test_size=lb.TEST_SIZE,
                            root=args.root, dtype=args.dtype, address=args.ray or None, cpus=args.cpus_per_cell,
                            gpus=args.gpus_per_cell, recompute=args.recompute)
        key = fan_out.setting_key(EMBEDDED, args.dtype, args.scale, lb.TEST_SIZE)
    else:
        lm = bk.load_model(device=args.device, dtype=args.dtype)
        print(lm, flush=True)
        _fill(args, lm)
        key = lb.setting(lm, args.scale, lb.TEST_SIZE)
    table = bk.load_leaderboard(args.root, stats=True, setting=key)
    tasks = [t for t in lb.TASKS if any(t in row for row in table.values())]
    print("\n| method | " + " | ".join(tasks) + " | average |")
    print("|---|" + "---|" * (len(tasks) + 1))
    for method, row in table.items():
        cells = [f"{100 * row[t]['mean']:.1f} ± {100 * row[t]['std']:.1f} ({row[t]['seeds']})" if t in row else "—"
                 for t in tasks]
        avg = f"{100 * sum(row[t]['mean'] for t in tasks) / len(tasks):.1f}" if all(t in row for t in tasks) else "—"
        print(f"| {lb.ROWS[method]} | " + " | ".join(cells) + f" | {avg} |")


if __name__ == "__main__":
    main()
