"""Low-rank updates put into a model's projections through forward hooks, always removed on exit:
LoRA adapters, one set for the model (MeZO, IPL's white box), and adapters per candidate on W_Q and W_K,
a different one for each candidate of a population in one pass (DFO-LoRA). Reached through
``bbtkit.model.inject``, the one door to model internals."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


# --- low-rank adapters (LoRA): W x + (alpha / r) B A x on chosen projections -----------------------
LORA_NAMES = {"q": ("q_proj", "query"), "k": ("k_proj", "key"), "v": ("v_proj", "value")}


def lora_modules(lm, targets=("q", "v"), layers=None) -> dict[str, torch.nn.Linear]:
    """The attention projections an adapter goes on, by name: Llama-style (q_proj, ...), BERT and
    RoBERTa (query, ...). GPT-2 fuses them into one c_attn, which these adapters do not split."""
    bad = [t for t in targets if t not in LORA_NAMES]
    if bad or not targets:
        raise ValueError(f"LoRA targets must be among {tuple(LORA_NAMES)}, got {tuple(targets)}.")
    out = {}
    for l in (range(lm.num_layers) if layers is None else layers):
        for name, mod in lm.layers[l].named_modules():
            short = name.rsplit(".", 1)[-1]
            if isinstance(mod, torch.nn.Linear) and any(short in LORA_NAMES[t] for t in targets):
                out[f"layers.{l}.{name}"] = mod
    if not out:
        raise ValueError(f"No {'/'.join(targets)} projection found in {lm.name}'s layers (GPT-2 fuses them into "
                         "c_attn); LoRA here supports Llama-style, BERT and RoBERTa models.")
    return out


@contextmanager
def lora(lm, rank: int = 8, alpha: float = 16.0, targets=("q", "v"), layers=None,
         seed: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Adapters on the chosen projections for the duration of the block; yields {name: A or B}.

    A (r, in) starts as LoRA's code does (Kaiming-uniform), B (out, r) at zero, so the model starts
    unchanged; the tensors are plain (requires_grad is the caller's choice). Always removed on exit.
    """
    gen = torch.Generator().manual_seed(int(seed))
    tensors, handles = {}, []
    for name, mod in lora_modules(lm, targets, layers).items():
        A = torch.empty(rank, mod.in_features)
        torch.nn.init.kaiming_uniform_(A, a=5 ** 0.5, generator=gen)
        A = A.to(mod.weight.device, mod.weight.dtype)
        B = torch.zeros(mod.out_features, rank, device=mod.weight.device, dtype=mod.weight.dtype)
        tensors[f"{name}.lora_A"], tensors[f"{name}.lora_B"] = A, B
        handles.append(mod.register_forward_hook(_low_rank(A, B, alpha / rank)))
    try:
        yield tensors
    finally:
        for h in handles:
            h.remove()


def _low_rank(A: torch.Tensor, B: torch.Tensor, scale: float):
    def hook(module, args, output):
        return output + scale * ((args[0] @ A.T) @ B.T)
    return hook


# --- adapters per candidate (DFO-LoRA): low-rank updates of W_Q and W_K, one set per candidate ----------
def attention_projections(lm, layer: int, targets=("q", "k")) -> dict[str, tuple[torch.nn.Module, slice | None]]:
    """{target: (module, output slice)} of one layer: the query/key projections of Llama-style, BERT
    and RoBERTa models (slice None), or GPT-2's fused c_attn with the target's third of its output."""
    bad = [t for t in targets if t not in LORA_NAMES]
    if bad or not targets:
        raise ValueError(f"Adapter targets must be among {tuple(LORA_NAMES)}, got {tuple(targets)}.")
    found: dict[str, tuple[torch.nn.Module, slice | None]] = {}
    for name, mod in lm.layers[layer].named_modules():
        short = name.rsplit(".", 1)[-1]
        for t in targets:
            if isinstance(mod, torch.nn.Linear) and short in LORA_NAMES[t]:
                found[t] = (mod, None)
            elif short == "c_attn":  # GPT-2: one Conv1D computes q, k and v side by side
                h = lm.hidden_size
                found[t] = (mod, slice("qkv".index(t) * h, ("qkv".index(t) + 1) * h))
    if set(found) != set(targets):
        raise ValueError(f"Layer {layer} of {lm.name} has no {'/'.join(sorted(set(targets) - set(found)))} projection.")
    return found


@contextmanager
def candidate_adapters(lm, adapters: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor]]],
                       scale: float = 1.0) -> Iterator[None]:
    """Low-rank updates W + scale * B A on the chosen projections, a different one per candidate.

    adapters: {layer: {"q" | "k": (A (pop, r, in), B (pop, out, r))}}. The rows of the forward are
    candidate-major (pop * batch), so candidate c's update applies to rows c*batch .. (c+1)*batch - 1:
    no weight is changed, and a population runs in one pass. Hooks always removed on exit.
    """
    handles = []
    try:
        for layer, per_target in adapters.items():
            projections = attention_projections(lm, layer, tuple(per_target))
            for target, (A, B) in per_target.items():
                mod, part = projections[target]
                w = mod.weight
                handles.append(mod.register_forward_hook(
                    _per_candidate(A.to(w.device, w.dtype), B.to(w.device, w.dtype), scale, part)))
        yield
    finally:
        for h in handles:
            h.remove()


def _per_candidate(A: torch.Tensor, B: torch.Tensor, scale: float, part: slice | None):
    def hook(module, args, output):
        x = args[0]                                                    # (pop * batch, seq, in)
        pop = A.shape[0]
        xs = x.reshape(pop, -1, x.shape[-1])                           # (pop, batch * seq, in)
        delta = torch.bmm(torch.bmm(xs, A.transpose(1, 2)), B.transpose(1, 2))
        delta = (scale * delta).reshape(*x.shape[:-1], B.shape[1])     # (pop * batch, seq, out)
        if part is None:
            return output + delta
        out = output.clone()
        out[..., part] += delta
        return out
    return hook
