"""Speed of the papers' own setting: the BBT and BBTv2 presets on the RoBERTa-large shape twin, prompt
before the input, on whatever device is here, against the original code's way of calling the model.

BBT's paper preset: 50 prompt tokens, d = 500, population 20, 8000 calls. BBTv2's: a deep prompt of 50
tokens in each of the 24 layers, population 20, tuned layer by layer; with the layer cache a candidate
that differs from layer l up runs only layers l..23, so its seconds per call are averaged over l.
The reference evaluates one candidate at a time through the stock model with full-vocabulary logits at
every position, and (BBTv2) every layer for every candidate, as the original code does. The workload is
SST-2 16-shot (32 examples). The twin has random weights (``bk.model.load.shape_twin``): its accuracy means
nothing, its speed is the real thing. Logits of both paths must agree (max |diff| is printed).

On a CPU one candidate takes seconds, so only ``--timed`` candidates of each population are timed (a
population is evaluated in chunks of the same size, so seconds per call hold for 20); the output says so.

    python benchmarks/paper_speed.py [--device auto] [--dtype auto] [--timed 20] [--model roberta-large]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from api_throughput import machine, reference_call, timed

import bbtkit as bk
from bbtkit.model.twins import SHAPES

CALLS = 8000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="roberta-large", choices=sorted(SHAPES))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--timed", type=int, default=None, help="candidates timed per path (default: 20 on GPU, 2 on CPU)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--layers", type=int, nargs="+", default=None, help="BBTv2: layers timed (default 0, L/2, L-1)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    lm = bk.model.load.shape_twin(args.model, device=args.device, dtype=args.dtype)
    cfg = bk.BBTConfig.paper()
    pop, n, L = cfg.popsize, cfg.n_prompt_tokens, lm.num_layers
    timed_n = args.timed or (pop if lm.device.type == "cuda" else 2)
    task, split = bk.get_task("sst2"), bk.load_split("sst2", seed=42)
    print(f"{lm}; built in {time.perf_counter() - t0:.0f} s\nmachine: {machine()}")
    print(f"workload: SST-2 16-shot ({len(split.train)} examples), {n} prompt tokens, population {pop}, d = "
          f"{cfg.intrinsic_dim}; {timed_n} candidates timed per path"
          + ("" if timed_n >= pop else " (a CPU: a few candidates are enough; seconds per call hold for a population)"))
    g = torch.Generator().manual_seed(0)
    std = lm.embeddings.weight.float().std().item()
    shallow = 0.5 * std * torch.randn(timed_n, n, lm.hidden_size, generator=g)
    deep = 0.5 * std * torch.randn(timed_n, L, n, lm.hidden_size, generator=g)
    sync = torch.cuda.synchronize if lm.device.type == "cuda" else (lambda: None)

    def clock(fn, warm):
        def run():
            out = fn()
            sync()
            return out
        return timed(run, args.repeats, warm=warm)

    rows = []
    api = bk.BlackBoxLM(lm, task, split.train, position="before")
    t_api, out = clock(lambda: api(shallow).logits, lambda: api(shallow[:1]))
    t_ref, ref = clock(lambda: torch.stack([reference_call(lm, task, split.train, p, "before") for p in shallow]),
                       lambda: reference_call(lm, task, split.train, shallow[0], "before"))
    rows.append(("BBT", t_ref / timed_n, t_api / timed_n, (out - ref).abs().max().item()))

    layers = args.layers or [0, L // 2, L - 1]
    per_layer = []
    for layer in layers:  # candidates that agree below `layer` (BBTv2 tunes one layer at a time)
        cand = deep.clone()
        cand[:, :layer] = deep[:1, :layer]
        api = bk.BlackBoxLM(lm, task, split.train, position="before")
        api.cache_below(layer, cand[0])
        t, got = clock(lambda: api(cand).logits, lambda: api(cand[:2]))
        per_layer.append(t / timed_n)
        if layer == layers[0]:
            t_ref, ref = clock(lambda: torch.stack([reference_call(lm, task, split.train, c[0], "before", deep=c)
                                                    for c in cand]), lambda: None)
            diff = (got - ref).abs().max().item()
    mean_api = float(np.mean(np.interp(np.arange(L), layers, per_layer)))  # every layer is tuned in turn
    rows.append(("BBTv2", t_ref / timed_n, mean_api, diff))
    print("BBTv2, BlackBoxLM s/call by the layer tuned: " + ", ".join(f"layer {l}: {s:.3f}" for l, s in zip(layers, per_layer)))

    print(f"\n{'preset':7s} {'reference s/call':>17s} {'BlackBoxLM s/call':>18s} {'speed-up':>9s} "
          f"{f'{CALLS} calls, ref':>17s} {f'{CALLS} calls, API':>17s} {'max |diff|':>11s}")
    for name, ref_s, api_s, d in rows:
        print(f"{name:7s} {ref_s:17.3f} {api_s:18.3f} {ref_s / api_s:8.1f}x {ref_s * CALLS / 60:13.1f} min "
              f"{api_s * CALLS / 60:13.1f} min {d:11.2e}")
    print(f"dtype {lm.dtype}; total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
