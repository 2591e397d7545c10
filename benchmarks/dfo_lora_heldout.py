"""DFO-LoRA against its own start on held-out data (issue 35): is the tuned model worse than B = 0?

For each (method, seed), one run on the few-shot split with the leaderboard's cpu_quick config at
--budget calls and ``select_se = 0`` (the strict rule: the best dev score wins, the start included),
then the metric of what it returns, on the shared test subset and, for SST-2, on a held-out set
carved from the task's full train.jsonl (inputs of at least --min-words words that are in no few-shot
split of any seed: never trained or selected on). The start is scored once per task and dtype: the
manual prompt, and each method's z = 0 (B = 0 for DFO-LoRA, the template's own embeddings for BBT),
which is the manual prompt in fp32 but, in bf16, a forward pass of other shapes, rounded otherwise.

Recorded per run: the dev curve, the start's and the returned dev scores, and with --curve the
held-out (else test) score of every z the loop scored on dev, which shows dev against new data along
the run. Which z another selection rule returns follows from the dev curve alone (the rule does not
steer the optimizer), so ``select_se = 1`` is read off the same runs (``tools`` in chapter 09).

    python benchmarks/dfo_lora_heldout.py [--task sst2] [--methods dfo_lora dfo_lora_fw bbt]
        [--seeds 13 42 100] [--dtype fp32] [--budget 300] [--eval-every 50] [--curve]
        [--set alpha=0.25 ...] [--heldout 1000] [--out runs/dfo_lora/heldout]

One JSON file per (task, dtype, method, budget, config changes, seed) under --out, skipped when present.
--set changes config fields (values read as JSON, else text): the projections' scale, for one.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.data.splits import Examples, data_dir, load_examples
from bbtkit.course.leaderboard import ROOT, TEST_SIZE, setting
from bbtkit.methods.registry import paper_budget
from bbtkit.methods.registry import get_method

OUT = Path(__file__).resolve().parents[1] / "runs" / "dfo_lora" / "heldout"


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


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def start_scores(lm, task: str, held: Examples | None, out: Path) -> dict:
    """The untuned model (the manual prompt) on the test subset and the held-out set, once per task and dtype."""
    path = out / f"start-{task}-{str(lm.dtype).removeprefix('torch.')}.json"
    if path.exists():
        return json.loads(path.read_text())
    split = bk.load_split(task, seed=42, test_size=TEST_SIZE)
    doc = {"task": task, "dtype": str(lm.dtype), "test": bk.evaluate(lm, task, split.test), "n_test": len(split.test),
           "heldout": None if held is None else bk.evaluate(lm, task, held), "n_heldout": 0 if held is None else len(held)}
    _write(path, doc)
    return doc


def zero_scores(lm, task: str, method: str, res, split, held: Examples | None, out: Path) -> None:
    """The method's z = 0 (its start) on the test subset and the held-out set, added to the start file once."""
    path = out / f"start-{task}-{str(lm.dtype).removeprefix('torch.')}.json"
    doc = json.loads(path.read_text())
    if method not in doc.setdefault("zero", {}):
        r0 = dataclasses.replace(res, z=np.zeros_like(np.asarray(res.z)))
        doc["zero"][method] = {
            "test": bk.evaluate(lm, task, split.test, r0.prompt, position=r0.position, adapters=r0.adapters),
            "heldout": None if held is None else bk.evaluate(lm, task, held, r0.prompt, position=r0.position,
                                                              adapters=r0.adapters)}
        _write(path, doc)


def from_leaderboard(lm, task: str, method: str, seed: int, cfg):
    """The cached cell of this run (the leaderboard's, or chapter 09's AG News comparison), when one has the
    same config and was made under the strict rule: the same run, not made twice."""
    scale = cfg.budget / paper_budget(task)
    for root in (ROOT, OUT.parent):
        path = root / setting(lm, scale, TEST_SIZE) / method / f"{task}-{seed}"
        if not (path / "result.json").exists():
            continue
        res = bk.load_result(path)
        want = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "select_se"}
        have = {k: v for k, v in res.config.items() if k != "select_se"}
        if json.loads(json.dumps(want)) == json.loads(json.dumps(have)) and not res.config.get("select_se"):
            return res
    return None


def one(lm, task: str, method: str, seed: int, budget: int, eval_every: int, held: Examples | None,
        curve: bool, out: Path, changes: dict) -> dict:
    split = bk.load_split(task, seed=seed, test_size=TEST_SIZE)
    m = get_method(method)
    cfg = m.preset(task, seed, paper=False, budget=budget)
    cfg = dataclasses.replace(cfg, eval_every=eval_every, select_se=0.0, **changes)
    points, last = [], [None]

    def keep_dev_z(trace) -> None:  # the z of every dev score, for scoring it on new data afterwards
        if trace.last.get("dev_metric") is not None and trace.dev_z is not last[0]:
            last[0] = trace.dev_z
            points.append((trace.last["calls"], trace.last["dev_metric"], np.array(trace.dev_z, dtype=float)))

    t0 = time.perf_counter()
    res, source = None if curve or changes else from_leaderboard(lm, task, method, seed, cfg), "run here"
    if res is not None:
        source = "the leaderboard's cell (same config, the strict rule)"
    else:
        res = m.run(lm, task, split, cfg, display=False, callback=keep_dev_z if curve else None)
    minutes = (time.perf_counter() - t0) / 60 if source == "run here" else res.seconds / 60
    zero_scores(lm, task, method, res, split, held, out)
    devs = [(r["calls"], r["dev_metric"]) for r in res.history if r.get("dev_metric") is not None]
    new = held if held is not None else split.test

    def score(r) -> float:
        return bk.evaluate(lm, task, new, r.prompt, position=r.position, adapters=r.adapters)
    doc = {"task": task, "method": method, "seed": seed, "budget": budget, "dtype": str(lm.dtype), "source": source,
           "changes": changes,
           "calls": res.api_calls, "minutes": minutes, "kept_start": bool(np.all(np.asarray(res.z) == 0)),
           "selection": res.extra.get("selection"), "dev_curve": devs, "n_dev": len(split.dev),
           "train_loss": {"start": res.history[0].get("best_loss"),
                          "end": min((h["best_loss"] for h in res.history if h.get("best_loss") is not None), default=None)},
           "dev": {"start": devs[0][1], "returned": res.dev_metric,
                   "best_at_calls": next(c for c, d in devs if d == res.dev_metric)},
           "test": {"returned": res.test_metric, "n": len(split.test)},
           "heldout": None if held is None else {"returned": score(res), "n": len(held)}}
    if curve:  # new-data score of each z scored on dev after the start (the start's is in the start file)
        doc["curve_on"] = "heldout" if held is not None else "test"
        doc["new_curve"] = [(c, d, score(dataclasses.replace(res, z=z.reshape(np.shape(res.z)))))
                            for c, d, z in points]
    return doc


def _field(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set takes FIELD=VALUE, e.g. alpha=0.25, not {text!r}.")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--methods", nargs="+", default=["dfo_lora", "dfo_lora_fw", "bbt"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 42, 100])
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--curve", action="store_true", help="score every dev-scored z on new data too")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config changes, e.g. alpha=0.25")
    ap.add_argument("--heldout", type=int, default=1000, help="held-out size (tasks with a train.jsonl; 0: none)")
    ap.add_argument("--min-words", type=int, default=8)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    lm, out = bk.load_model(dtype=args.dtype), Path(args.out)
    changes = dict(_field(kv) for kv in args.set)
    tag = "".join(f"-{k}{v}" for k, v in changes.items())
    has_train = (data_dir(args.task) / args.task / "train.jsonl").exists()
    held = heldout(args.task, args.heldout, args.min_words) if args.heldout and has_train else None
    start = start_scores(lm, args.task, held, out)
    print(lm, f"| start: test {100 * start['test']:.1f}" + ("" if held is None else f", held-out {100 * start['heldout']:.1f}"), flush=True)
    dtype = str(lm.dtype).removeprefix("torch.")
    for method in args.methods:
        for seed in args.seeds:
            path = out / f"{args.task}-{dtype}-{method}-b{args.budget}{tag}-{seed}.json"
            r = json.loads(path.read_text()) if path.exists() else None
            if r is None:
                r = one(lm, args.task, method, seed, args.budget, args.eval_every, held, args.curve, out, changes)
                _write(path, r)
            ho = "" if r["heldout"] is None else f"held-out {100 * r['heldout']['returned']:.1f}  "
            print(f"{method:11s} seed {seed:3d}: {ho}test {100 * r['test']['returned']:.1f}  dev {100 * r['dev']['start']:.1f}"
                  f" -> {100 * r['dev']['returned']:.1f} (at {r['dev']['best_at_calls']} calls)  kept start: {r['kept_start']}"
                  f"  {r['minutes']:.1f} min", flush=True)


if __name__ == "__main__":
    main()
