"""Peak memory and seconds per call of one generation of BBTv2 (deep prompts) against one of DFO-LoRA
(adapters), each in its own process so that one cannot inherit the other's peak.

Both are the registry's cpu_quick presets on SST-2's training set (seed 42): a generation of 10
candidates through ``BlackBoxLM``, once from scratch (the layer cache filled on the way) and once
more with the cache in place. On a CPU the memory figure is the process's peak resident memory
(ru_maxrss), printed beside the same figure after loading; on a GPU ``torch.cuda.max_memory_allocated``.

    python benchmarks/dfo_lora_memory.py [--dtype fp32] [--device auto] [--save runs/dfo_lora/memory.json]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MODES = ("bbtv2", "dfo_lora")


def peak_mib(cuda: bool) -> float:
    import torch
    return torch.cuda.max_memory_allocated() / 2**20 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, args) -> dict:
    import numpy as np
    import torch

    import bbtkit as bk
    from bbtkit.methods.dfo_lora import make_optimizer, make_space

    torch.set_num_threads(2)
    lm = bk.load_model(device=args.device, dtype=args.dtype)
    split = bk.load_split("sst2", seed=42)
    cuda = lm.device.type == "cuda"
    loaded = peak_mib(cuda)
    if mode == "bbtv2":
        p = bk.methods.bbtv2.setup(lm, "sst2", split, bk.BBTv2Config.cpu_quick(seed=42))
        p.train(p.space.candidates(p.opt.start[None]))  # the incumbent, as the loop scores it first
        call = lambda: p.train(p.space.candidates(p.opt.ask()))  # noqa: E731
    else:
        cfg = bk.DFOLoRAConfig.cpu_quick(seed=42)
        api = bk.BlackBoxLM(lm, "sst2", split.train, layer_cache=True)
        layers = cfg.resolve_layers(lm.num_layers)
        space, opt = make_space(cfg, api, layers), make_optimizer(cfg, layers)
        api(adapters=space.candidates(np.zeros((1, len(layers), cfg.intrinsic_dim))))
        call = lambda: api(adapters=space.candidates(opt.ask()))  # noqa: E731
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        out = call()
        seconds.append((time.perf_counter() - t0) / out.logits.shape[0])
    return {"mode": mode, "loaded_mib": loaded, "peak_mib": peak_mib(cuda), "device": lm.device.type,
            "dtype": str(lm.dtype).removeprefix("torch."), "seconds_per_call": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--save", default=None, help="also write the figures as JSON here (notebook 09 reads "
                    "runs/dfo_lora/memory.json)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    rows = []
    for mode in MODES:
        cmd = [sys.executable, __file__, "--child", mode, "--dtype", args.dtype, "--device", args.device]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
        r = rows[-1]
        print(f"{mode:9s} loaded {r['loaded_mib']:7.0f} MiB  peak {r['peak_mib']:7.0f} MiB  "
              f"s/call first {r['seconds_per_call'][0]:.3f}, cached {r['seconds_per_call'][1]:.3f}", flush=True)
    if args.save:
        from pathlib import Path
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
