"""Seconds per API call: BlackBoxLM against the way the original BBT code evaluates a prompt, and how
close each path comes to the machine's limit.

Workload: SST-2 16-shot (32 examples), 10 prompt tokens, the embedded model. The reference path
evaluates one candidate at a time through the stock model with full-vocabulary logits at every
position; BlackBoxLM evaluates the population together, computes the head only at the answer
position for the label words, reuses the input's keys and values (prompt after the input), and pads
groups of similar length to their own longest (prompt before the input). Both paths get the same
prompts at the same positions, so their label-word logits must agree (the column max |diff|).

FLOP/s: the floating-point operations each path executes (counted by torch's FlopCounterMode, padding
included) per second, beside a plain matmul of the model's FFN shape in the same dtype, in the same run:
the nearest thing to this machine's limit for this model.

Where the time goes: --profile prints torch.profiler's table of the busiest operators for one call of
each path with the prompt before the input. Contention: --background N runs N other processes of plain
matmuls (one thread each) during the measurement, as when another job shares the machine.

    python benchmarks/api_throughput.py [--dtypes fp32 bf16] [--pop 20] [--repeats 2] [--profile] [--background 1]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import bbtkit as bk
from bbtkit.model import inject
from bbtkit.runtime import smoke
from bbtkit.model.templates import encode_example, pad_batch


@torch.no_grad()
def reference_call(lm, task, examples, prompt, position, deep=None):
    """One candidate, stock model, logits over the whole vocabulary at every position (original BBT);
    deep: (layers, n, H) added to each layer's input at the prompt positions (original BBTv2)."""
    enc = [encode_example(lm, task, ex, prompt.shape[0], position) for ex in examples]
    b = pad_batch(enc, lm.pad_id, "right")
    embeds = inject.embed(lm, b.ids, b.prompt, prompt[None].to(lm.dtype))
    hooks = inject.deep_prompt_hooks(lm, None if deep is None else deep[None].to(lm.dtype), b.prompt)
    with hooks:
        logits = lm.model(inputs_embeds=embeds, attention_mask=b.mask.to(lm.device)).logits  # (batch, seq, vocab)
    return logits[torch.arange(len(enc)), b.answer][:, task.label_ids(lm)].float()


def timed(fn, repeats, warm=None):
    (warm or fn)()  # warm-up (a cheaper one when given: one candidate builds what a call reuses)
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - t0) / repeats, out


def machine() -> str:
    """The CPU's model name (and the GPU's, when there is one), for the record beside each figure."""
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor() or platform.machine()) if Path("/proc/cpuinfo").exists() else platform.processor()
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"CPU {cpu} ({torch.get_num_threads()} threads){gpu}, torch {torch.__version__}"


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def matmul_flops_per_s(lm, tokens: int = 2048, repeats: int = 5) -> float:
    """A plain (tokens x H) @ (H x FFN) matmul in the model's dtype: the machine's rate for this model's shapes."""
    H, F = lm.hidden_size, lm.config.intermediate_size
    a = torch.randn(tokens, H, dtype=lm.dtype, device=lm.device)
    w = torch.randn(H, F, dtype=lm.dtype, device=lm.device)
    t, _ = timed(lambda: a @ w, repeats)
    return 2 * tokens * H * F / t


def busy(stop) -> None:
    """Another job on the machine: plain matmuls on one thread until told to stop."""
    torch.set_num_threads(1)
    a = torch.randn(1024, 1024)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def profile(label, fn, rows: int = 10) -> None:
    """torch.profiler's operators by their own CPU time, for one call of fn."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\n{label}: the busiest operators of one call")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=40))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], help="each is measured in this one run")
    ap.add_argument("--pop", type=int, default=4 if smoke() else 20, help="candidates per call batch")
    ap.add_argument("--repeats", type=int, default=1 if smoke() else 2)
    ap.add_argument("--tokens", type=int, default=10)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--profile", action="store_true", help="print where one call of each path spends its time")
    ap.add_argument("--background", type=int, default=0, help="other busy processes during the measurement")
    args = ap.parse_args()
    print("machine:", machine())
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    others = [ctx.Process(target=busy, args=(stop,), daemon=True) for _ in range(args.background)]
    for p in others:
        p.start()
    if others:
        print(f"contention: {len(others)} other process(es) of one-thread matmuls run throughout")
    try:
        measure(args)
    finally:
        stop.set()
        for p in others:
            p.join()


def measure(args) -> None:
    for dtype in args.dtypes:
        torch.manual_seed(0)
        lm = bk.load_model(device=args.device, dtype=dtype)
        task, split = bk.get_task("sst2"), bk.load_split("sst2", seed=42)
        std = lm.embeddings.weight.std().item()
        prompts = 0.5 * std * torch.randn(args.pop, args.tokens, lm.hidden_size)
        limit = matmul_flops_per_s(lm)
        print(f"\n{lm}\nworkload: SST-2 16-shot ({len(split.train)} examples), {args.tokens} prompt tokens, "
              f"population {args.pop}; plain matmul {limit / 1e9:.0f} GFLOP/s")
        print(f"{'placement':10s} {'reference s/call':>17s} {'BlackBoxLM s/call':>18s} {'speed-up':>9s} "
              f"{'max |diff|':>11s} {'ref GFLOP/s':>12s} {'API GFLOP/s':>12s}")
        apis = {}
        for position in ("after", "before"):
            api = apis[position] = bk.BlackBoxLM(lm, task, split.train, position=position)
            t_api, out = timed(lambda: api(prompts).logits, args.repeats, warm=lambda: api(prompts[:1]))
            t_ref, ref = timed(lambda: torch.stack([reference_call(lm, task, split.train, p, position) for p in prompts]),
                               args.repeats, warm=lambda: reference_call(lm, task, split.train, prompts[0], position))
            per_api, per_ref = t_api / args.pop, t_ref / args.pop
            f_api = flops(lambda: api(prompts[:2])) / 2  # per candidate
            f_ref = flops(lambda: reference_call(lm, task, split.train, prompts[0], position))
            diff = (out - ref).abs().max().item()
            print(f"{position:10s} {per_ref:17.3f} {per_api:18.3f} {per_ref / per_api:8.1f}x {diff:11.2e} "
                  f"{f_ref / per_ref / 1e9:12.0f} {f_api / per_api / 1e9:12.0f}", flush=True)
        if args.profile:  # the API timed above, already warm
            profile(f"reference, prompt before, one candidate ({lm.dtype})",
                    lambda: reference_call(lm, task, split.train, prompts[0], "before"))
            profile(f"BlackBoxLM, prompt before, {args.pop} candidates ({lm.dtype})", lambda: apis["before"](prompts).logits)


if __name__ == "__main__":
    main()
