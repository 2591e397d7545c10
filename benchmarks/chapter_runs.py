"""The runs that chapters 03-06 load instead of computing them again, made once in fp32 and saved under
runs/chapters/ with their fingerprints (``bk.run_or_load``): a notebook loads one only when its own call asks
for exactly that run (run function, model and dtype, task definition, examples, config), and otherwise runs
it live. Every run here is the one its notebook cell shows in plain view; keep the two in step (the
notebooks print "Loaded ..." when they are).

    python benchmarks/chapter_runs.py                 # what is missing (about 20 min on a 2-core Xeon, fp32)
    python benchmarks/chapter_runs.py --fresh         # all of them again
    python benchmarks/chapter_runs.py --only 03-sweep # one group: 03, 03-sweep, 04, 05, 06

What each run is for:
- 03: BBT on SST-2 with the "Overall" template (cpu_quick, 400 calls, the whole test set); 05 shows it
  beside its calibrated twin, 04 and 06 compare with it.
- 03-sweep: section 4's one-setting-at-a-time runs (200 calls each, 200 test examples).
- 04: BBTv2, same template and budget.
- 05: BBT with champion calibration inside the objective.
- 06: Feature-MLP, AJO, and BBTv2 with champion calibration.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import bbtkit as bk

ROOT = Path(__file__).resolve().parents[1] / "runs" / "chapters"
MADE_BY = "`python benchmarks/chapter_runs.py`"
OVERALL = ("{text_a} Overall, the movie was {mask}", ("bad", "great"))
BUDGET, SWEEP_BUDGET, N_TEST, SWEEP_TEST = 400, 200, 872, 200


def sweep_changes() -> dict[str, dict]:
    """Notebook 03's section 4: one setting of cpu_quick changed at a time (the unchanged one once)."""
    return {"d": {f"d={v}": {"intrinsic_dim": v} for v in (10, 100, 500)},
            "tokens": {f"n={v}": {"n_prompt_tokens": v} for v in (1, 3, 8)},
            "projection": {p: {"projection": p} for p in ("normal", "uniform")},
            "loss": {name: {"loss": name} for name in ("ce", "hinge")}}


def sweep_name(cfg, change: dict) -> str:
    """The folder of a sweep run: the settings that differ from cfg, or "base" when none do."""
    return "-".join(f"{k}={v}" for k, v in change.items() if getattr(cfg, k) != v) or "base"


def runs(lm, only: str | None):
    task = bk.get_task("sst2").with_template(OVERALL[0], lm.family, OVERALL[1])
    split = bk.load_split("sst2", seed=42, test_size=N_TEST)
    bbt = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=42), budget=BUDGET)
    v2 = dataclasses.replace(bk.BBTv2Config.cpu_quick(seed=42), budget=BUDGET)
    ajo = dataclasses.replace(bk.AJOConfig.cpu_quick(seed=42), budget=BUDGET)
    groups = {
        "03": [(bk.run_bbt, split, bbt, "bbt-overall-sst2-42")],
        "04": [(bk.run_bbtv2, split, v2, "bbtv2-overall-sst2-42")],
        "05": [(bk.run_bbt, split, dataclasses.replace(bbt, calibration="champion"), "bbt-champion-overall-sst2-42")],
        "06": [(bk.run_feature_mlp, split, dataclasses.replace(ajo, feature_epochs=100), "feature-mlp-overall-sst2-42"),
               (bk.run_ajo, split, ajo, "ajo-overall-sst2-42"),
               (bk.run_bbtv2, split, dataclasses.replace(v2, calibration="champion"), "bbtv2-champion-overall-sst2-42")],
    }
    sweep_split = bk.load_split("sst2", seed=42, test_size=SWEEP_TEST)
    base = dataclasses.replace(bbt, budget=SWEEP_BUDGET, eval_every=max(bbt.popsize, SWEEP_BUDGET // 4))
    groups["03-sweep"] = [(bk.run_bbt, sweep_split, dataclasses.replace(base, **change),
                           f"bbt-sweep/{sweep_name(bbt, change)}")
                          for group in sweep_changes().values() for change in group.values()]
    for name, items in groups.items():
        if only in (None, name):
            for run, sp, cfg, folder in items:
                yield name, task, run, sp, cfg, folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fresh", action="store_true", help="compute every run again, even those saved")
    ap.add_argument("--only", choices=["03", "03-sweep", "04", "05", "06"])
    ap.add_argument("--root", default=str(ROOT))
    args = ap.parse_args()
    lm = bk.load_model(dtype="fp32")  # the notebooks' dtype: their printed numbers are fp32
    print(bk.runtime.describe(), flush=True)
    seen = set()
    for group, task, run, split, cfg, folder in runs(lm, args.only):
        if folder in seen:
            continue
        seen.add(folder)
        t0 = time.perf_counter()
        res = bk.run_or_load(run, lm, task, split, cfg, Path(args.root) / folder, fresh=args.fresh,
                             made_by=MADE_BY, display=False)
        print(f"[{group}] {folder}: {res.summary()} (manual {res.manual_test:.3f}; "
              f"{(time.perf_counter() - t0) / 60:.1f} min here)", flush=True)


if __name__ == "__main__":
    main()
