"""Seam regression: every registered method, plus MeZO, gradient IPL and EoT, on tiny budgets (fp32, SST-2
seed 42; EoT on two MultiArith problems), saved to a folder and compared row by row with the same runs made by
another version of bbtkit, the commit before a refactor. A refactor that keeps behaviour gives identical rows:
max |Δz| = 0 (or the same instruction text, the same predictions), the same training losses
generation by generation, the same calls, dev and test.

    git worktree add /tmp/before <commit before the change>
    PYTHONPATH=/tmp/before python benchmarks/seam_regression.py --save /tmp/seam-before
    python benchmarks/seam_regression.py --save /tmp/seam-after --compare /tmp/seam-before

It uses only ``import bbtkit as bk``'s public names, so that both versions run it. CMA-ES histories can
differ across CPUs in the last digits: compare runs made on one machine, one after the other.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

import bbtkit as bk

EXTRA = ("mezo", "ipl_gradient", "eot")  # beside the registry: the white-box baselines and the reasoning run


def rows_of(lm, names, budget: int, test_size: int):
    """Yield (name, row, z) for each run: row = {calls, dev, test, text}; z = the tuned vectors or None."""
    split = bk.load_split("sst2", seed=42, test_size=test_size)
    for name in names:
        if name == "eot":
            problems = bk.load_reasoning("multiarith", n=2, seed=0)
            res = bk.run_eot(lm, problems, bk.EoTConfig.cpu_quick(reason_tokens=32, rewrite_tokens=32, evolve_tokens=24),
                             display=False)
            yield name, {"calls": res.calls, "dev": None, "test": res.accuracy,
                         "text": [t["prediction"] for t in res.traces], "losses": []}, None
            continue
        if name == "mezo":
            cfg = dataclasses.replace(bk.MeZOConfig.cpu_quick(seed=42), budget=budget, eval_every=budget // 2)
            res = bk.run_mezo(lm, "sst2", split, cfg, display=False)
        else:
            method = bk.METHODS["ipl" if name == "ipl_gradient" else name]
            cfg = method.preset("sst2", 42, budget=budget) if method.tunes else method.preset("sst2", 42)
            if name == "ipl_gradient":
                cfg = dataclasses.replace(cfg, mode="gradient", steps=4, eval_every=2)
            res = method.run(lm, "sst2", split, cfg, display=False)
        text = res.extra.get("instruction")
        losses = [h.get("best_loss", h.get("train_loss")) for h in res.history]  # the path, not only where it ended
        yield name, {"calls": res.api_calls, "dev": res.dev_metric, "test": res.test_metric, "text": text,
                     "losses": losses}, res.z


def compare(name: str, row: dict, z, other: Path) -> dict:
    """This run against the other version's: max |Δz| (inf for another shape), and whether the rest agrees."""
    before = json.loads((other / f"{name}.json").read_text())
    dz = None
    if z is not None:
        z0 = np.load(other / f"{name}-z.npy")
        dz = float(np.abs(z0 - z).max(initial=0.0)) if z0.shape == np.shape(z) else float("inf")
    same = all(before.get(k) == row[k] for k in ("calls", "dev", "test", "text", "losses")) and dz in (None, 0.0)
    return {"method": name, "max_dz": dz, "same": same, "before": before, "after": row}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", required=True, help="folder for this version's runs")
    ap.add_argument("--compare", help="folder of another version's runs")
    ap.add_argument("--methods", nargs="+", default=[*bk.METHODS, *EXTRA])
    ap.add_argument("--model", default="auto", help="smollm2-135m (default) or a tiny test model")
    ap.add_argument("--budget", type=int, default=40, help="API calls (MeZO: forward passes) per run")
    ap.add_argument("--test-size", type=int, default=50)
    args = ap.parse_args(argv)
    lm = bk.load_model(args.model, dtype="fp32")
    out = Path(args.save)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for name, row, z in rows_of(lm, args.methods, args.budget, args.test_size):
        if z is not None:
            np.save(out / f"{name}-z.npy", np.asarray(z, dtype=np.float64))
        (out / f"{name}.json").write_text(json.dumps(row))
        if args.compare:
            table.append(compare(name, row, z, Path(args.compare)))
            c = table[-1]
            dz = "-" if c["max_dz"] is None else f"{c['max_dz']:.1e}"
            print(f"| {name} | {dz} | {c['before']['calls']} -> {row['calls']} | {c['before']['dev']} -> {row['dev']} | "
                  f"{c['before']['test']} -> {row['test']} | {'identical' if c['same'] else 'DIFFERS'} |", flush=True)
        else:
            print(f"{name}: {row['calls']} calls, dev {row['dev']}, test {row['test']}", flush=True)
    if args.compare:
        (out / "compare.json").write_text(json.dumps(table, indent=1))
    return table


if __name__ == "__main__":
    main()
