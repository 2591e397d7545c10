"""Seconds per API call: BlackBoxLM against the way the original BBT code evaluates a prompt.

Workload: SST-2 16-shot (32 examples), 10 prompt tokens, the embedded model. The reference path
evaluates one candidate at a time through the stock model with full-vocabulary logits at every
position; BlackBoxLM evaluates the population together, computes the head only at the answer
position for the label words, and (prompt after the input) reuses the input's keys and values.
Both paths get the same prompts at the same positions, so their label-word logits must agree.

    python benchmarks/api_throughput.py [--pop 20] [--repeats 2]
"""
from __future__ import annotations

import argparse
import time

import torch

import bbtkit as bk
from bbtkit import inject
from bbtkit.runtime import smoke
from bbtkit.templates import encode_example, pad_batch


@torch.no_grad()
def reference_call(lm, task, examples, prompt, position):
    """One candidate, stock model, logits over the whole vocabulary at every position (original BBT)."""
    enc = [encode_example(lm, task, ex, prompt.shape[0], position) for ex in examples]
    b = pad_batch(enc, lm.pad_id, "right")
    embeds = inject.embed(lm, b.ids, b.prompt, prompt[None].to(lm.dtype))
    logits = lm.model(inputs_embeds=embeds, attention_mask=b.mask).logits  # (batch, seq, vocab)
    return logits[torch.arange(len(enc)), b.answer][:, task.label_ids(lm)].float()


def timed(fn, repeats):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - t0) / repeats, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pop", type=int, default=4 if smoke() else 20, help="candidates per call batch")
    ap.add_argument("--repeats", type=int, default=1 if smoke() else 2)
    ap.add_argument("--tokens", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    lm = bk.load_model()
    task, split = bk.get_task("sst2"), bk.load_split("sst2", seed=42)
    std = lm.embeddings.weight.std().item()
    prompts = 0.5 * std * torch.randn(args.pop, args.tokens, lm.hidden_size)
    print(f"{lm}\nworkload: SST-2 16-shot ({len(split.train)} examples), {args.tokens} prompt tokens, "
          f"population {args.pop}, torch threads {torch.get_num_threads()}")
    print(f"{'placement':10s} {'reference s/call':>17s} {'BlackBoxLM s/call':>18s} {'speed-up':>9s} {'max |diff|':>11s}")
    for position in ("after", "before"):
        api = bk.BlackBoxLM(lm, task, split.train, position=position)
        t_api, out = timed(lambda: api(prompts).logits, args.repeats)
        t_ref, ref = timed(lambda: torch.stack([reference_call(lm, task, split.train, p, position) for p in prompts]),
                           args.repeats)
        per_api, per_ref = t_api / args.pop, t_ref / args.pop
        diff = (out - ref).abs().max().item()
        print(f"{position:10s} {per_ref:17.3f} {per_api:18.3f} {per_ref / per_api:8.1f}x {diff:11.2e}")


if __name__ == "__main__":
    main()
