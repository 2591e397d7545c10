"""Does torch.compile (inductor's CPU backend) bring the black box closer to the machine's matmul rate?

The README's speed section found that in bf16 with AMX a plain matmul runs up to 9x faster than in fp32
while the model's elementwise operators (RMSNorm's pow/mean/mul, SiLU, the gate's mul, residual adds,
copies) gain less, so BlackBoxLM reaches only a quarter to a half of the matmul's rate. Fusing those
operators is what inductor does. This measures, in one run and per dtype, BlackBoxLM's seconds per call
(SST-2 16-shot, 10 prompt tokens, a population of --pop) with the embedded model:

- ``eager``: as shipped;
- ``mlp+norms``: each layer's MLP and its two RMSNorms compiled (``torch.compile(dynamic=True)``), the
  attention left eager;
- ``layers``: each decoder layer's ``forward`` compiled whole (deep-prompt hooks stay outside it, in
  ``Module.__call__``, so they do not force recompiles).

and for each variant: the first call's seconds (compilation), the steady seconds per call, the speed-up
over eager, GFLOP/s (torch's FlopCounterMode on the eager path), and max |Δ logits| against eager in the
same dtype: a variant is exact when that stays within fp32's tolerance (1e-4) in fp32.

    python benchmarks/compile_speed.py [--dtypes fp32 bf16] [--pop 10] [--repeats 3]

Writes runs/compile_speed.json (the machine, the rows).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import bbtkit as bk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_throughput import flops, matmul_flops_per_s  # noqa: E402  (one way to count, for both benchmarks)

OUT = Path(__file__).resolve().parents[1] / "runs" / "compile_speed.json"


def compile_parts(lm, which: str) -> list[tuple[object, object]]:
    """Replace the chosen modules' forward with a compiled one; returns (module, eager forward) to undo."""
    # Each layer's integer index is a static guard: dynamo compiles the layer function once per layer (and per
    # shape), and at its default limit of 8 it would run the other layers eagerly.
    torch._dynamo.config.recompile_limit = torch._dynamo.config.accumulated_recompile_limit = 8 * len(lm.layers)
    undo = []
    for layer in lm.layers:
        mods = [layer] if which == "layers" else [layer.mlp, layer.input_layernorm, layer.post_attention_layernorm]
        for m in mods:
            undo.append((m, m.forward))
            m.forward = torch.compile(m.forward, dynamic=True)
    return undo


def restore(undo) -> None:
    for m, fwd in undo:
        m.forward = fwd
    torch._dynamo.reset()


def timed_calls(api, prompts, repeats: int) -> tuple[float, float, torch.Tensor]:
    """(first call's seconds, steady seconds per call per candidate, logits)."""
    t0 = time.perf_counter()
    out = api(prompts).logits
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(repeats):
        out = api(prompts).logits
    return first, (time.perf_counter() - t0) / repeats / len(prompts), out


@torch.no_grad()
def measure(dtype: str, pop: int, repeats: int, tokens: int) -> list[dict]:
    torch.manual_seed(0)
    lm = bk.load_model(dtype=dtype)
    task, split = bk.get_task("sst2"), bk.load_split("sst2", seed=42)
    prompts = 0.5 * lm.embeddings.weight.std().item() * torch.randn(pop, tokens, lm.hidden_size)
    limit = matmul_flops_per_s(lm)
    rows = []
    for position in ("after", "before"):
        api = bk.BlackBoxLM(lm, task, split.train, position=position)
        api(prompts[:1])  # formats the examples and caches the context: not what is compared
        per_candidate = flops(lambda: api(prompts[:2])) / 2
        _, eager_s, eager_out = timed_calls(api, prompts, repeats)
        for which in ("eager", "mlp+norms", "layers"):
            undo = compile_parts(lm, which) if which != "eager" else []
            try:
                first, per, out = timed_calls(api, prompts, repeats) if undo else (0.0, eager_s, eager_out)
                error = None
            except Exception as err:  # a variant that does not compile is a result too
                first, per, out, error = float("nan"), float("nan"), eager_out, f"{type(err).__name__}: {err}"[:300]
            finally:
                restore(undo)
            row = {"dtype": dtype, "position": position, "variant": which, "first_call_s": first,
                   "s_per_call": per, "speedup": eager_s / per, "gflops": per_candidate / per / 1e9,
                   "matmul_gflops": limit / 1e9, "max_abs_diff": float((out - eager_out).abs().max()), "error": error}
            rows.append(row)
            print(f"{dtype:5s} {position:6s} {which:10s} first {first:7.1f} s  {per:.4f} s/call  "
                  f"{row['speedup']:.2f}x  {row['gflops']:5.0f} GFLOP/s (matmul {row['matmul_gflops']:.0f})  "
                  f"max|Δ| {row['max_abs_diff']:.1e}" + (f"  {error}" if error else ""), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--pop", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=10)
    args = ap.parse_args()
    print(bk.runtime.describe(), flush=True)
    rows = [r for d in args.dtypes for r in measure(d, args.pop, args.repeats, args.tokens)]
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": bk.runtime.describe(), "torch": torch.__version__, "pop": args.pop,
                               "repeats": args.repeats, "rows": rows}, indent=1) + "\n")
    tmp.replace(OUT)


if __name__ == "__main__":
    main()
