"""All prompt injection lives here.

* Shallow prompts, (batch, n, hidden): added to the word embeddings at the prompt positions, and
  fed to the model through ``inputs_embeds``.
* Deep prompts, (batch, layers, n, hidden): entry 0 goes into the word embeddings like a shallow
  prompt; entry l >= 1 is added to the hidden states entering layer l, through forward pre-hooks
  that a context manager always removes.

A layer window (``layer_window``) runs only some layers: the others pass their input through, and
a cached hidden state replaces the input of the first layer run. BBTv2's layer cache rests on it,
and ``capture_inputs`` records what enters a layer (before that layer's prompt is added).

Prompts are *added* at existing token positions (BBT's p0 + A z), so an all-zero prompt is
exactly the bare model. Position ids are always passed explicitly, so left and right padding and
a cached context all give each token its true position.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import torch

# The adapters live in lowrank.py and are reached through here, the one door to model internals.
from .lowrank import LORA_NAMES, attention_projections, candidate_adapters, lora, lora_modules  # noqa: F401


def add_at(hidden: torch.Tensor, positions: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """hidden (rows, seq, H) + prompt at positions (rows, n); out of place.

    prompt: (rows, n, H), or (pop, n, H) with rows = pop * batch in candidate-major order: each
    candidate's prompt is then shared by its batch of examples.
    """
    if prompt is None or positions.numel() == 0:
        return hidden
    if prompt.shape[0] != hidden.shape[0]:
        prompt = prompt.repeat_interleave(hidden.shape[0] // prompt.shape[0], 0)
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(positions)
    return hidden.index_put((rows, positions.to(hidden.device)), prompt.to(hidden.dtype), accumulate=True)


def embed(lm, ids: torch.Tensor, positions: torch.Tensor | None = None,
          prompt: torch.Tensor | None = None) -> torch.Tensor:
    """Word embeddings of ids (batch, seq), with a shallow prompt (batch, n, H) added at positions."""
    out = lm.embeddings(ids.to(lm.device))
    return out if prompt is None else add_at(out, positions, prompt)


@contextmanager
def deep_prompt_hooks(lm, prompts: torch.Tensor | None, positions: torch.Tensor,
                      first_layer: int = 1) -> Iterator[None]:
    """Add prompts[:, l] (batch, n, H) to the input of layer l, for l >= first_layer.

    prompts: (batch, layers, n, H) or None (no hooks). positions: (batch, n), indices into the
    sequence that the layers see (the uncached part, when a context is cached).
    """
    handles = []
    if prompts is not None:
        positions = positions.to(lm.device)
        for l in range(first_layer, min(prompts.shape[1], lm.num_layers)):
            handles.append(lm.layers[l].register_forward_pre_hook(_adder(prompts[:, l], positions),
                                                                  with_kwargs=True))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _adder(prompt: torch.Tensor, positions: torch.Tensor):
    def hook(module, args, kwargs):
        return _with_hidden(args, kwargs, add_at(_hidden_arg(args, kwargs), positions, prompt))
    return hook


@contextmanager
def layer_window(lm, start: int, stop: int | None = None, hidden: torch.Tensor | None = None) -> Iterator[None]:
    """Run only layers start..stop-1; the others return their input unchanged (and cost nothing).

    hidden: (rows, seq, H), replaces the input of layer ``start`` (a cached state, so that the
    layers below need not run). Register it before any prompt hooks: the replacement is put first
    in the hook order, so a prompt at layer ``start`` is added to the cached state, not to junk.
    """
    stop = lm.num_layers if stop is None else stop
    skipped = [layer for i, layer in enumerate(lm.layers) if not start <= i < stop]
    handles = []
    for layer in skipped:  # an instance attribute shadows the class's forward; hooks still run
        layer.forward = _pass_through
    if hidden is not None and start < lm.num_layers:
        handles.append(lm.layers[start].register_forward_pre_hook(_replacer(hidden), with_kwargs=True, prepend=True))
    try:
        yield
    finally:
        for layer in skipped:
            del layer.forward
        for h in handles:
            h.remove()


@contextmanager
def capture_inputs(lm, layers) -> Iterator[dict[int, torch.Tensor]]:
    """Record the hidden states entering each of ``layers``: {layer: (rows, seq, H)}.

    What is recorded comes before that layer's own prompt is added (the hook is put first).
    """
    seen: dict[int, torch.Tensor] = {}
    handles = [lm.layers[l].register_forward_pre_hook(_recorder(seen, l), with_kwargs=True, prepend=True)
               for l in layers]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def _pass_through(hidden_states, *args, **kwargs):
    return hidden_states


def _hidden_arg(args, kwargs) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _with_hidden(args, kwargs, hidden):
    if args:
        return (hidden, *args[1:]), kwargs
    return args, dict(kwargs, hidden_states=hidden)


def _replacer(hidden: torch.Tensor):
    def hook(module, args, kwargs):
        return _with_hidden(args, kwargs, hidden.to(_hidden_arg(args, kwargs).dtype))
    return hook


def _recorder(seen: dict, layer: int):
    def hook(module, args, kwargs):
        seen[layer] = _hidden_arg(args, kwargs).detach()
    return hook


def count_hooks(lm) -> int:
    """Hooks anywhere in the model's layers (prompts, adapters) and pass-through overrides (0 outside a context)."""
    hooks = sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for layer in lm.layers for m in layer.modules())
    return hooks + sum("forward" in vars(l) for l in lm.layers)


def run_layers(lm, embeds: torch.Tensor, mask: torch.Tensor, position_ids: torch.Tensor,
               past=None) -> tuple[torch.Tensor, object]:
    """The transformer on given input embeddings: (batch, seq, H) -> last hidden (batch, seq, H).

    past: a cache of context keys and values (causal LMs), or None. Returns the hidden states and
    the updated cache.
    """
    kwargs = dict(inputs_embeds=embeds, attention_mask=mask.to(lm.device), position_ids=position_ids.to(lm.device))
    if lm.family == "mlm":
        if getattr(lm.config, "type_vocab_size", 0):
            kwargs["token_type_ids"] = torch.zeros_like(kwargs["position_ids"])
    else:
        if past is not None:
            kwargs.update({_cache_arg(type(lm.base)): past, "use_cache": True})
        else:
            kwargs["use_cache"] = False
    out = lm.base(**kwargs)
    if past is None:
        return out.last_hidden_state, None
    return out.last_hidden_state, getattr(out, _cache_arg(type(lm.base)))


@lru_cache(maxsize=None)
def _cache_arg(base_class) -> str:
    """The keyword under which this transformers version takes a KV cache.

    transformers 5.24 renamed `past_key_values` to `cache` (the old name warns until 5.40); both are
    supported so that the package works on either side of the rename without a warning.
    Looked up once per model class: this runs on every forward.
    """
    return "cache" if "cache" in inspect.signature(base_class.forward).parameters else "past_key_values"


def answer_logits(lm, fw, rows: torch.Tensor, prompt: torch.Tensor | None = None,
                  per_example: bool = False) -> torch.Tensor:
    """Label-word logits (len(rows), classes) of some examples of an uncached ``api.Forward``,
    recomputed from the current weights (the word embeddings included), with autograd when the
    caller has it on. prompt: None, (n, H) shallow or (layers, n, H) deep, shared by the rows; with
    per_example=True, (len(rows), n, H), one shallow prompt per row (IPL)."""
    ids, mask, pos = fw.ids[rows], fw.mask[rows], fw.pos[rows]
    positions, answer = fw.prompt_pos[rows], fw.answer[rows]
    deep = prompt[None] if prompt is not None and prompt.ndim == 3 and not per_example else None
    shallow = None if prompt is None else (prompt if per_example else prompt[None] if prompt.ndim == 2 else prompt[None, 0])
    embeds = add_at(embed(lm, ids), positions, shallow) if shallow is not None else embed(lm, ids)
    with deep_prompt_hooks(lm, deep, positions):
        h, _ = run_layers(lm, embeds, mask, pos)
    return lm.label_logits(h[torch.arange(len(rows), device=h.device), answer], fw.label_ids)
