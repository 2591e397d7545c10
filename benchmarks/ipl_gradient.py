"""IPL as the paper trains it (AdamW through the frozen model: a white-box reference, not an API
method), cached beside the black-box runs it is compared with in notebook 11.

The black-box rows come from the registry, at 300 API calls:
    python benchmarks/zo_compare.py --tasks sst2 agnews --methods bbt ipl --root runs/zo
This script adds ``IPLConfig.cpu_quick(mode="gradient")`` (60 AdamW steps of 16 examples) for the same
tasks and seeds, in ``<root>/<setting>/ipl_gradient/<task>-<seed>/`` (the setting of the black-box runs:
same model, dtype and test set). Cached runs are skipped.

    python benchmarks/ipl_gradient.py [--tasks sst2 agnews] [--seeds 13 42 100] [--root runs/ipl]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.course import leaderboard as lb

ROOT = Path(__file__).resolve().parents[1] / "runs" / "ipl"
METHOD = "ipl_gradient"


def run_cell(lm, task: str, seed: int, root: Path = ROOT, test_size: int = lb.TEST_SIZE) -> bk.Result:
    """One gradient-trained IPL run, loaded when cached."""
    folder = Path(root) / lb.setting(lm, scale=lb.budget("sst2") / bk.methods.registry.paper_budget(task), test_size=test_size)
    path = folder / METHOD / f"{bk.get_task(task).name}-{lb.check_seed(seed)}"
    if (path / "result.json").exists():
        return bk.load_result(path)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / lb.SETTING_FILE).exists():
        (folder / lb.SETTING_FILE).write_text(json.dumps({"model": lm.name, "dtype": str(lm.dtype).removeprefix("torch."),
                                                          "test_size": test_size, "steps": True}) + "\n")
    split = bk.load_split(task, seed=seed, test_size=test_size)
    res = bk.run_ipl(lm, task, split, bk.IPLConfig.cpu_quick(seed=seed, mode="gradient"), display=False)
    res.extra.update(test_size=len(split.test), device=lm.device.type, dtype=str(lm.dtype).removeprefix("torch."))
    res.save(path, overwrite=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=["sst2", "agnews"])
    ap.add_argument("--seeds", nargs="+", type=int, default=list(lb.SEEDS))
    ap.add_argument("--root", default=str(ROOT))
    ap.add_argument("--dtype", default="fp32")
    args = ap.parse_args()
    lm = bk.load_model(dtype=args.dtype)
    for task in args.tasks:
        tests = []
        for seed in args.seeds:
            res = run_cell(lm, task, seed, Path(args.root))
            tests.append(res.test_metric)
            print(f"IPL (gradient) {task:7s} seed {seed:3d}: test {res.test_metric:.3f} dev {res.dev_metric:.3f} "
                  f"{res.stop['steps']} steps (best {res.stop['best_step']}) {res.seconds / 60:.1f} min", flush=True)
        print(f"{task}: {100 * np.mean(tests):.1f} ± {100 * np.std(tests):.1f} over {len(tests)} seeds")


if __name__ == "__main__":
    main()
