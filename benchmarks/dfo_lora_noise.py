"""How large is DFO-LoRA's signal against bf16's rounding (issue 35)? One layer's first generation, in fp32 and bf16.

For the lowest layer ``cpu_quick`` adapts, on SST-2's 32 training examples (seed 42):

* **noise**: the loss of the same zero adapters (B = 0, the manual prompt) computed in batches of other
  shapes (alone, and at several positions among other candidates): identical in exact arithmetic, so
  their spread is the rounding of the dtype;
* **signal**: the spread (std) of the training losses of one CMA-ES generation of candidates around zero
  (sigma = 1, as a run's first generation), i.e. how much the adapters move the loss;
* the accuracy of B = 0 on the 500-sentence test subset through the adapter path, against the manual
  prompt's through the plain path (equal in exact arithmetic).

    python benchmarks/dfo_lora_noise.py [--out runs/dfo_lora/heldout/noise.json]     (about 2 minutes)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.methods.dfo_lora import make_space
from bbtkit.course.leaderboard import TEST_SIZE
from bbtkit.tuning.objectives import Loss

OUT = Path(__file__).resolve().parents[1] / "runs" / "dfo_lora" / "heldout" / "noise.json"


def measure(dtype: str, popsize: int = 10, seed: int = 42) -> dict:
    lm, task = bk.load_model(dtype=dtype), bk.get_task("sst2")
    split = bk.load_split("sst2", seed=seed, test_size=TEST_SIZE)
    cfg = bk.DFOLoRAConfig.cpu_quick(seed)
    layers = cfg.resolve_layers(lm.num_layers)
    api = bk.BlackBoxLM(lm, task, split.train)
    space, loss = make_space(cfg, api, layers), Loss(task, cfg.loss)
    rng = np.random.default_rng(seed)
    Z = np.zeros((popsize, len(layers), cfg.intrinsic_dim))
    Z[:, 0] = cfg.sigma * rng.standard_normal((popsize, cfg.intrinsic_dim))  # one generation of the lowest layer
    zero_losses = [float(loss(api(adapters=space.candidates(np.zeros((1,) + Z.shape[1:]))))[0][0])]
    for at in (0, popsize // 2, popsize - 1):  # the same zero adapters inside a batch of other candidates
        Y = Z.copy()
        Y[at] = 0
        zero_losses.append(float(loss(api(adapters=space.candidates(Y)))[0][at]))
    gen = loss(api(adapters=space.candidates(Z)))[0]
    b0 = space.adapters(np.zeros(Z.shape[1:]))
    return {"dtype": str(lm.dtype), "layer": layers[0], "popsize": popsize,
            "zero_losses": zero_losses, "noise": float(np.ptp(zero_losses)),
            "generation_losses": [float(x) for x in gen], "signal_std": float(np.std(gen)),
            "test_manual": bk.evaluate(lm, task, split.test),
            "test_b0": bk.evaluate(lm, task, split.test, adapters=b0), "n_test": len(split.test)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    rows = []
    for dtype in args.dtypes:
        r = measure(dtype)
        rows.append(r)
        print(f"{r['dtype']:15s} zero adapters' loss in 4 batch shapes: spread {r['noise']:.2e} | one generation's "
              f"losses: std {r['signal_std']:.2e} | test: manual {100 * r['test_manual']:.1f}, B = 0 "
              f"{100 * r['test_b0']:.1f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    main()
