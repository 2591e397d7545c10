"""DFO-LoRA against its own start on held-out data (issue 35): is the tuned model worse than B = 0?

For each seed and optimizer, one ``DFOLoRAConfig.cpu_quick`` run on the few-shot split, then the test
metric of what it returns and of its start (B = 0: the manual prompt exactly) on two sets: the shared
test set, and a held-out set carved from the task's full train.jsonl (inputs of at least --min-words
words that are in no few-shot split of any seed: never trained or selected on). Also recorded: the dev
metric of the start and of the returned adapters, and where along the run the best dev was reached.

    python benchmarks/dfo_lora_heldout.py [--task sst2] [--seeds 13 42 100] [--optimizers cma fireworks]
        [--dtype fp32] [--heldout 1000] [--budget 300] [--out runs/dfo_lora/heldout]

One JSON file per (task, dtype, optimizer, seed) under --out, skipped when present.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.data import Examples, data_dir, load_examples


def heldout(task: str, n: int, min_words: int, seed: int = 0) -> Examples:
    """n inputs of the full train.jsonl that no few-shot split of any seed holds, drawn with a fixed seed."""
    folder = data_dir(task) / task
    seen = {ex.text_a for p in folder.glob("fewshot/*/*.jsonl") for ex in load_examples(p)}
    pool = [ex for ex in load_examples(folder / "train.jsonl") if ex.text_a not in seen
            and len(ex.text_a.split()) >= min_words]
    if len(pool) < n:
        raise ValueError(f"Only {len(pool)} held-out inputs of {min_words}+ words in {task}/train.jsonl; lower --heldout.")
    idx = np.sort(np.random.RandomState(seed).choice(len(pool), size=n, replace=False))
    return Examples([pool[i] for i in idx], name=f"{task}/heldout{n}")


def one(lm, task: str, seed: int, optimizer: str, budget: int, held: Examples) -> dict:
    split = bk.load_split(task, seed=seed)
    cfg = dataclasses.replace(bk.DFOLoRAConfig.cpu_quick(seed, optimizer=optimizer), budget=budget)
    t0 = time.perf_counter()
    res = bk.run_dfo_lora(lm, task, split, cfg, display=False)
    devs = [(r["calls"], r["dev_metric"]) for r in res.history if r.get("dev_metric") is not None]
    score = lambda ex, adapters=None: bk.evaluate(lm, task, ex, position=res.position, adapters=adapters)  # noqa: E731
    return {"task": task, "seed": seed, "optimizer": optimizer, "budget": budget, "dtype": str(lm.dtype),
            "calls": res.api_calls, "minutes": (time.perf_counter() - t0) / 60,
            "kept_start": bool(np.all(np.asarray(res.z) == 0)),
            "dev": {"start": devs[0][1], "returned": res.dev_metric, "best_at_calls": next(c for c, d in devs if d == res.dev_metric)},
            "test": {"start": score(split.test), "returned": res.test_metric, "n": len(split.test)},
            "heldout": {"start": score(held), "returned": score(held, res.adapters), "n": len(held)},
            "dev_curve": devs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 42, 100])
    ap.add_argument("--optimizers", nargs="+", default=["cma", "fireworks"], choices=["cma", "fireworks"])
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--heldout", type=int, default=1000)
    ap.add_argument("--min-words", type=int, default=8)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "runs" / "dfo_lora" / "heldout"))
    args = ap.parse_args()
    lm = bk.load_model(dtype=args.dtype)
    held = heldout(args.task, args.heldout, args.min_words)
    print(lm, f"| held-out: {len(held)} inputs of {args.min_words}+ words", flush=True)
    for optimizer in args.optimizers:
        for seed in args.seeds:
            path = Path(args.out) / f"{args.task}-{str(lm.dtype).removeprefix('torch.')}-{optimizer}-b{args.budget}-{seed}.json"
            if path.exists():
                r = json.loads(path.read_text())
            else:
                r = one(lm, args.task, seed, optimizer, args.budget, held)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(r, indent=1) + "\n")
                tmp.replace(path)
            print(f"{optimizer:9s} seed {seed:3d}: held-out {100 * r['heldout']['start']:.1f} -> {100 * r['heldout']['returned']:.1f}"
                  f"  test {100 * r['test']['start']:.1f} -> {100 * r['test']['returned']:.1f}  dev {100 * r['dev']['start']:.1f} -> "
                  f"{100 * r['dev']['returned']:.1f} (at {r['dev']['best_at_calls']} calls)  kept B=0: {r['kept_start']}  "
                  f"{r['minutes']:.1f} min", flush=True)


if __name__ == "__main__":
    main()
