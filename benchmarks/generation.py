"""BBT for generation against the template alone, zero-shot and zero-shot CoT, on a reasoning set's short
answers: exact match of greedy answers on a fixed test sample (100 problems), BBT over seeds 13, 42, 100
(``bk.run_bbt_generation``, the cpu_quick space, 200 scoring calls on 32 training problems), fp32.

    python benchmarks/generation.py [--sets coin_flip multiarith] [--seeds 13 42 100]

Writes runs/generation/<set>/{bbt-<seed>,template,zero-shot,zero-shot-cot}.json (ReasoningResults) and
runs/generation/<set>/curves.json (each seed's loss and dev records); a finished file is not run again.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import bbtkit as bk
from bbtkit.data.reasoning import ReasoningSet, load_reasoning
from bbtkit.methods.bbt_generation import GenerationConfig, split_problems

ROOT = Path(__file__).resolve().parents[1] / "runs" / "generation"


def _write_json(path: Path, doc) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["coin_flip"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[13, 42, 100])
    args = ap.parse_args()
    lm = bk.load_model(dtype="fp32")
    print(bk.runtime.describe(), "| computing in", lm.dtype, flush=True)
    for name in args.sets:
        problems, folder = load_reasoning(name), ROOT / name
        folder.mkdir(parents=True, exist_ok=True)
        curves = json.loads((folder / "curves.json").read_text()) if (folder / "curves.json").exists() else {}
        test = split_problems(problems, GenerationConfig.cpu_quick())[2]
        for method in ("zero-shot", "zero-shot-cot"):
            if not (folder / f"{method}.json").exists():
                res = bk.run_reasoning(lm, ReasoningSet(name, problems.kind, list(test)), method, display=False)
                res.save(folder / f"{method}.json")
                print(res.summary(), flush=True)
        for seed in args.seeds:
            if (folder / f"bbt-{seed}.json").exists():
                continue
            tuned, untuned, trace = bk.run_bbt_generation(lm, problems, GenerationConfig.cpu_quick(seed))
            tuned.save(folder / f"bbt-{seed}.json")
            if not (folder / "template.json").exists():
                untuned.save(folder / "template.json")
            curves[str(seed)] = {"history": trace.history, "stop": trace.stop, "best_dev": trace.best_dev}
            _write_json(folder / "curves.json", curves)
            print(f"seed {seed}: {tuned.summary()} | template alone {untuned.accuracy:.1%}", flush=True)


if __name__ == "__main__":
    main()
