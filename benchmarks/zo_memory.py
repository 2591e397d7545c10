"""Peak memory of one MeZO step against one Adam (backprop) step on the embedded model, in one run.

Each measurement runs in its own process, so that one cannot inherit the other's peak: the model is
loaded, one batch of training examples encoded, then one step is taken. On a CPU the figure is the
process's peak resident memory (ru_maxrss), with the same figure after loading (the model and the
runtime) printed beside it; on a GPU it is ``torch.cuda.max_memory_allocated``. "inference" is one
forward pass of the same batch without autograd: what MeZO's perturbations stay near.

"mezo" includes what ``run_mezo`` keeps to give the model back bit for bit: a copy of the tuned tensors
(``tensor_params.kept``), taken at the start and written back at the end, in host memory. On a CPU that
copy is in the peak (for params=all, one more copy of the weights: 513 MiB for SmolLM2-135M in fp32); on
a GPU it is not in the device peak, it is host memory, printed apart with the seconds it takes. "adam"
is one step alone, without the copies ``run_backprop`` keeps (its start and its best step).

    python benchmarks/zo_memory.py [--params all|lora|prefix] [--batch 16] [--dtype fp32] [--device auto] [--save F]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

MODES = ("inference", "mezo", "adam")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(mode: str, args) -> dict:
    import dataclasses

    import torch

    import bbtkit as bk
    from bbtkit.whitebox import access as whitebox
    from bbtkit.whitebox.mezo import MeZOConfig, TensorParams, batch_rows, trainable
    from bbtkit.whitebox.tensor_params import kept, snapshot_bytes
    from bbtkit.optim.zo import ZO

    torch.set_num_threads(2)
    lm = bk.load_model(device=args.device, dtype=args.dtype)
    split = bk.load_split(args.task, seed=42)
    cfg = dataclasses.replace(MeZOConfig.cpu_quick(params=args.params), batch_size=args.batch)
    fw = whitebox.encode(lm, args.task, split.train, cfg.n_prompt_tokens if cfg.params == "prefix" else 0)
    labels = torch.tensor([ex.label for ex in split.train]).to(lm.device)
    rows = batch_rows(cfg, 0, fw.batch)
    cuda = lm.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    loaded = torch.cuda.max_memory_allocated() / 2**20 if cuda else rss_mib()
    copy = {"snapshot_mib": 0.0, "snapshot_s": 0.0, "restore_s": 0.0}
    with trainable(lm, cfg) as (tensors, prompt):
        if mode == "inference":
            with torch.inference_mode():
                whitebox.answer_logits(lm, fw, rows, prompt)
        elif mode == "mezo":
            t0 = time.perf_counter()
            with kept(tensors), torch.inference_mode():  # run_mezo's copy, for the exact restore (host memory)
                copy.update(snapshot_mib=snapshot_bytes(tensors) / 2**20, snapshot_s=time.perf_counter() - t0)
                params = TensorParams(tensors)
                opt = ZO(params, "zo-sgd", eps=cfg.eps, lr=cfg.lr, seed=0)

                def loss():
                    logits = whitebox.answer_logits(lm, fw, rows, prompt)
                    return float(torch.nn.functional.cross_entropy(logits, labels[rows]))

                X = opt.ask()
                opt.tell(X, params.losses(X, loss))
                t0 = time.perf_counter()
            if cuda:
                torch.cuda.synchronize()
            copy["restore_s"] = time.perf_counter() - t0
        else:
            leaves = list(lm.model.parameters()) if cfg.params == "all" else list(tensors.values())
            for t in leaves:
                t.requires_grad_(True)
            adam = torch.optim.Adam(leaves, lr=1e-5)
            loss = torch.nn.functional.cross_entropy(whitebox.answer_logits(lm, fw, rows, prompt), labels[rows])
            loss.backward()
            adam.step()
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else rss_mib()
    return {"mode": mode, "loaded_mib": loaded, "peak_mib": peak, "device": lm.device.type,
            "dtype": str(lm.dtype).removeprefix("torch."), "trained": int(sum(t.numel() for t in tensors.values())),
            "width": int(fw.ids.shape[1]), "rows": len(rows), "host_peak_mib": rss_mib(), **copy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="all", choices=("all", "lora", "prefix"))
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--save", default=None, help="also write the figures as JSON here (notebook 08 reads "
                    "runs/zo/memory.json)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    out = {}
    for mode in MODES:
        cmd = [sys.executable, __file__, "--child", mode, "--params", args.params, "--task", args.task,
               "--batch", str(args.batch), "--dtype", args.dtype, "--device", args.device]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    first = out["inference"]
    what = "peak allocated GPU memory" if first["device"] == "cuda" else "peak resident memory (ru_maxrss)"
    print(f"{what}, one step, params={args.params} ({first['trained']:,} numbers trained), "
          f"{first['rows']} x {first['width']} tokens of {args.task}, {first['device']} {first['dtype']}")
    for mode, r in out.items():
        print(f"  {mode:9s} peak {r['peak_mib']:8.0f} MiB   after loading {r['loaded_mib']:8.0f} MiB   "
              f"step's own {r['peak_mib'] - r['loaded_mib']:8.0f} MiB")
    m = out["mezo"]
    where = ("host memory, not in the GPU peak above" if first["device"] == "cuda"
             else "in the peak above (host memory is the device here)")
    print(f"  MeZO keeps a copy of the tuned tensors for an exact restore: {m['snapshot_mib']:.0f} MiB, {where}; "
          f"taken in {m['snapshot_s']:.2f} s, written back in {m['restore_s']:.2f} s (once per run); "
          f"host peak {m['host_peak_mib']:.0f} MiB")
    ratio = out["adam"]["peak_mib"] / out["mezo"]["peak_mib"]
    own = (out["adam"]["peak_mib"] - out["adam"]["loaded_mib"]) / max(1.0, out["mezo"]["peak_mib"] - out["mezo"]["loaded_mib"])
    if args.save:
        from pathlib import Path
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text(json.dumps({**out, "params": args.params, "batch": args.batch}, indent=1))
    print(f"Adam / MeZO: {ratio:.2f}x the peak; {own:.1f}x the memory the step itself adds; "
          f"MeZO / inference: {out['mezo']['peak_mib'] / first['peak_mib']:.2f}x the peak")


if __name__ == "__main__":
    main()
