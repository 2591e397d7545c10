"""Methods of the registry at equal API calls over seeds: CMA-ES (BBT), ZO-SGD, prior-guided ZO and
random search on BBT's space (notebook 08's curves, the default), or BBTv2 against DFO-LoRA with
CMA-ES and with fireworks (notebook 09: ``--methods bbtv2 dfo_lora dfo_lora_fw --root runs/dfo_lora``).

Every method is the registry's cpu_quick preset with the same budget: the leaderboard's SST-2 budget
(the report's 3000 calls x 0.1 = 300). A task on the leaderboard is cached there
(runs/leaderboard/<setting>/<method>/<task>-<seed>/, so these runs are its rows too); any other task under
--root (default runs/zo/). Cached runs are skipped, so the table can be filled over several sittings.

    python benchmarks/zo_compare.py [--tasks sst2 agnews] [--seeds 13 42 100] [--methods bbt random zo_sgd zo_gv]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.course import leaderboard as lb
from bbtkit.methods.registry import paper_budget

COMPARED = ("bbt", "random", "zo_sgd", "zo_gv")
ROOT = Path(__file__).resolve().parents[1] / "runs" / "zo"


def where(task: str, calls: int, root: Path = ROOT) -> tuple[Path, float]:
    """(cache root, budget scale) of a task's runs at ``calls`` API calls: the leaderboard's for its
    tasks at its scale, else ``root``."""
    scale = calls / paper_budget(task)
    on_board = bk.get_task(task).name in lb.TASKS and np.isclose(scale, lb.CPU_SCALE)
    return (lb.ROOT if on_board else Path(root)), scale


def load_runs(task: str, calls: int | None = None, methods=COMPARED, root: Path = ROOT) -> dict[str, list]:
    """The cached runs of each method on a task: {method: [Result, ...]} (seed order)."""
    root, scale = where(task, calls or lb.budget("sst2"), root)
    setting = next((s for s in lb.settings(root) if s.endswith(f"_scale{scale:g}")), None)  # the runs at these calls
    return {m: [r for _, r in sorted(lb.cached_runs(root, m, task, setting).items(),
                                     key=lambda kv: int(kv[0].split("-")[1]))] for m in methods}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["sst2", "agnews"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(lb.SEEDS))
    ap.add_argument("--methods", nargs="+", default=list(COMPARED), choices=list(bk.METHODS))
    ap.add_argument("--calls", type=int, default=lb.budget("sst2"))
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--root", default=str(ROOT), help="cache for tasks off the leaderboard (default runs/zo)")
    args = ap.parse_args()
    lm = bk.load_model(dtype=args.dtype)
    print(lm, flush=True)
    for task in args.tasks:
        root, scale = where(task, args.calls, args.root)
        for method in args.methods:
            for seed in args.seeds:
                res = lb.run_entry(lm, method, task, seed, scale=scale, root=root)
                print(f"{method:8s} {task:7s} seed {seed:3d}: test {res.test_metric:.3f} dev {res.dev_metric:.3f} "
                      f"{res.api_calls} calls {res.seconds / 60:.1f} min", flush=True)
    print("\n| method | " + " | ".join(args.tasks) + " |\n|---|" + "---|" * len(args.tasks))
    for method in args.methods:
        cells = []
        for task in args.tasks:
            runs = load_runs(task, args.calls, [method], args.root)[method]
            t = np.array([r.test_metric for r in runs])
            cells.append(f"{100 * t.mean():.1f} ± {100 * t.std():.1f} ({len(t)})" if len(t) else "—")
        print(f"| {bk.METHODS[method].label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
