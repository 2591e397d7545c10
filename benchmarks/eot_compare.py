"""EoT against zero-shot, zero-shot CoT and plan-and-solve on reasoning sets: accuracy, API calls,
tokens and minutes, each run saved to runs/eot/<set>/<method>.json (a stopped run resumes from its file).

Each method runs on the same seeded sample of each set, with EoTConfig.cpu_quick() on the embedded
model (greedy decoding). Notebook 10 loads the files.

    python benchmarks/eot_compare.py [--sets multiarith singleeq coin_flip] [--n 30] [--methods ...]
    python benchmarks/eot_compare.py --model HuggingFaceTB/SmolLM2-1.7B-Instruct --device cuda --root runs/eot_gpu
"""
from __future__ import annotations

import argparse
from pathlib import Path

import bbtkit as bk
from bbtkit.methods.eot import CALLS_PER_PROBLEM, EoTConfig, ReasoningResult, run_reasoning

ROOT = Path(__file__).resolve().parents[1] / "runs" / "eot"


def path_of(root: Path, name: str, method: str) -> Path:
    return Path(root) / name / f"{method}.json"


def load_table(root: Path = ROOT, sets=("multiarith", "singleeq", "coin_flip"), methods=tuple(CALLS_PER_PROBLEM)) -> dict:
    """{set: {method: ReasoningResult}} of the runs saved under root (missing ones left out)."""
    return {s: {m: ReasoningResult.load(path_of(root, s, m)) for m in methods if path_of(root, s, m).is_file()}
            for s in sets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["multiarith", "singleeq", "coin_flip"])
    ap.add_argument("--methods", nargs="+", default=list(CALLS_PER_PROBLEM), choices=list(CALLS_PER_PROBLEM))
    ap.add_argument("--n", type=int, default=30, help="problems per set (a seeded sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--root", type=Path, default=ROOT)
    args = ap.parse_args()
    lm = bk.load_model(args.model, device=args.device, dtype=args.dtype)
    cfg = EoTConfig.cpu_quick() if lm.device.type == "cpu" else EoTConfig.paper()
    print(f"{lm}; {cfg}")
    for name in args.sets:
        problems = bk.load_reasoning(name, n=args.n, seed=args.seed)
        for method in args.methods:
            res = run_reasoning(lm, problems, method, cfg, path=path_of(args.root, name, method))
            print(res.summary(), f"| {res.completion_tokens} tokens written", flush=True)
    print(f"\n{'set':12s}" + "".join(f"{m:>16s}" for m in args.methods))
    for name, row in load_table(args.root, args.sets, args.methods).items():
        print(f"{name:12s}" + "".join(f"{100 * row[m].accuracy:9.1f}% ({row[m].calls:3d})" if m in row else f"{'-':>16s}"
                                     for m in args.methods))


if __name__ == "__main__":
    main()
