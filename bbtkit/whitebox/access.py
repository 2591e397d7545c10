"""The white box, on purpose: what a method that opens the model may use (MeZO and its backprop
reference, IPL's gradient-trained original). ``BlackBoxLM`` gives label-word logits and nothing else; this module gives a forward
pass recomputed from the current weights (with autograd when the caller has it on), low-rank
adapters, and the weights' requires_grad flags set for a while and restored. Methods import this module, never ``inject``: a method that needs the weights says so in
its imports.
"""
from __future__ import annotations

from contextlib import contextmanager

from ..api.blackbox import Forward
from ..model.inject import answer_logits, lora, lora_modules
from ..data.tasks import get_task
from ..model.templates import resolve_position


def encode(model, task, examples, n_prompt: int = 0, position: str = "auto") -> Forward:
    """Examples tokenised once, without a cached context (the weights will change): rows for
    ``answer_logits``. ``fw.position`` is the resolved prompt position."""
    position = resolve_position(model, position)
    fw = Forward(model, get_task(task), examples, n_prompt, position, use_cache=False)
    fw.position = position
    return fw


@contextmanager
def weights_requiring_grad(model, flag: bool):
    """Every weight of the model with ``requires_grad`` set to ``flag`` for the duration; each weight's
    own flag comes back after, whatever happens inside."""
    flags = [p.requires_grad for p in model.model.parameters()]
    for p in model.model.parameters():
        p.requires_grad_(flag)
    try:
        yield
    finally:
        for p, f in zip(model.model.parameters(), flags):
            p.requires_grad_(f)


__all__ = ["answer_logits", "encode", "lora", "lora_modules", "weights_requiring_grad"]
