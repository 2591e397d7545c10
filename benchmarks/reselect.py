"""Give finished runs the selection rule their config now has, from their own recorded dev curves (issue 35).

The loop's selection rule (``bbtkit.selection``) chooses what a run returns among the z it scored on
dev; it never steers the optimizer. So a run made under the strict rule (``select_se = 0``) holds every
dev score that another rule would have chosen among, and the rule's choice can be read off its history
exactly: either the same z (its gain over the start is beyond the rule's margin) or the start. Where
the start is chosen, its test metric is measured again here (z = 0; for DFO-LoRA B = 0), so every
number in the rewritten folder comes from a forward pass.

    python benchmarks/reselect.py [--root runs/leaderboard] [--methods dfo_lora dfo_lora_fw] [--dry-run]

Each result folder is rewritten atomically, with ``extra["reselected"]`` saying what was done and what
the strict rule had returned (its dev and test metric); folders whose config already has the rule are left alone.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.methods.registry import get_method
from bbtkit.tuning.selection import Selection

REPO = Path(__file__).resolve().parents[1]


def reselect(path: Path, lm, dry_run: bool) -> str | None:
    res = bk.load_result(path)
    want = getattr(get_method(res.method).config, "select_se", 0.0)  # the config class's default
    if res.config.get("select_se", 0.0) == want or not want:
        return None
    devs = [h["dev_metric"] for h in res.history if h.get("dev_metric") is not None]
    seed = int(res.config["seed"])
    split = bk.load_split(bk.get_task(res.task).name, seed=seed, test_size=res.test_size)
    rule = Selection(want, n=len(split.dev))
    old, new = Selection(0.0).pick(devs), rule.pick(devs)
    assert new in (old, 0), "a stricter rule returns the strict rule's choice or the start"
    changed = new != old
    line = (f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: dev {devs[0]:.3f} -> {devs[old]:.3f} "
            f"(gain {devs[old] - devs[0]:+.3f}, margin {rule.margin(devs[0]):.3f} on {len(split.dev)}): "
            + ("start kept" if changed else "unchanged"))
    if dry_run:
        return line
    res.config["select_se"] = want
    strict = {"dev_metric": res.dev_metric, "test_metric": res.test_metric}
    if changed:
        res.z = np.zeros_like(np.asarray(res.z))
        res.dev_metric = devs[0]
        res.test_metric = bk.evaluate(lm, res.task, split.test, res.prompt, position=res.position, adapters=res.adapters)
        line += f", test {res.test_metric:.3f}"
    res.extra["selection"] = rule.record(res.history, float(devs[new]), new == 0)
    res.extra["reselected"] = {
        "how": (f"select_se = {want:g} applied to the recorded dev curve of a select_se = 0 run (benchmarks/reselect.py): "
                + ("the start is returned, its test metric measured again at z = 0" if changed else "the same z")),
        "start_kept": changed, "strict": strict}
    res.save(path, overwrite=True)
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", nargs="+", default=[str(REPO / "runs" / "leaderboard"), str(REPO / "runs" / "dfo_lora")])
    ap.add_argument("--methods", nargs="+", default=["dfo_lora", "dfo_lora_fw"])
    ap.add_argument("--dry-run", action="store_true", help="print what would change, load no model")
    args = ap.parse_args()
    lm = None
    for root in args.root:
        for setting in sorted(p for p in Path(root).iterdir() if p.is_dir()):
            dtype = json.loads((setting / "setting.json").read_text())["dtype"] if (setting / "setting.json").exists() else "fp32"
            for method in args.methods:
                for path in sorted((setting / method).glob("*/result.json")):
                    if lm is None and not args.dry_run:
                        lm = bk.load_model(dtype=dtype)
                    line = reselect(path.parent, lm, args.dry_run)
                    if line:
                        print(line, flush=True)


if __name__ == "__main__":
    main()
