"""Regression check for the tuning loop: one seeded BBT and one seeded BBTv2 run (cpu_quick, fp32,
SST-2 seed 42) saved to a folder, then compared with the same runs made by another version of bbtkit.

    python benchmarks/seam_regression.py --save /tmp/before      # with the old code on the path
    python benchmarks/seam_regression.py --save /tmp/after --compare /tmp/before

CMA-ES histories can differ across CPUs in the last digits: compare runs made on one machine.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import bbtkit as bk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", required=True, help="folder for this version's runs")
    ap.add_argument("--compare", help="folder of another version's runs")
    args = ap.parse_args()
    lm = bk.load_model(dtype="fp32")
    split = bk.load_split("sst2", seed=42, test_size=100)
    out = Path(args.save)
    out.mkdir(parents=True, exist_ok=True)
    for name, run, cfg in (("bbt", bk.run_bbt, bk.BBTConfig.cpu_quick(seed=42)),
                           ("bbtv2", bk.run_bbtv2, bk.BBTv2Config.cpu_quick(seed=42))):
        res = run(lm, "sst2", split, cfg, display=False)
        np.save(out / f"{name}-z.npy", res.z)
        (out / f"{name}.json").write_text(json.dumps({"calls": res.api_calls, "dev": res.dev_metric,
                                                      "test": res.test_metric, "seconds": res.seconds}))
        print(f"{name}: {res.api_calls} calls, dev {res.dev_metric:.4f}, test {res.test_metric:.4f}, "
              f"{res.seconds:.0f} s", flush=True)
        if args.compare:
            other = Path(args.compare)
            z0 = np.load(other / f"{name}-z.npy")
            meta0 = json.loads((other / f"{name}.json").read_text())
            dz = float(np.abs(z0 - res.z).max()) if z0.shape == res.z.shape else float("inf")
            print(f"  against {other}: max |Δz| = {dz:.2e}, calls {meta0['calls']} -> {res.api_calls}, "
                  f"dev {meta0['dev']:.4f} -> {res.dev_metric:.4f}, test {meta0['test']:.4f} -> {res.test_metric:.4f}")


if __name__ == "__main__":
    main()
