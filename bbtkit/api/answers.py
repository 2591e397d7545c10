"""How much of the label-word logits a service shows (chapter 12's defenses against model extraction):
``"full"`` (as computed), ``"top"`` (only the top label: 0 for it and -30 for the others, finite, so a loss
stays a number) or ``"rounded"`` (probabilities rounded to ``decimals`` places, sent back as their logs,
10^-(decimals+1) for a zero). The class server applies it to every logits response (``--answers``)."""
from __future__ import annotations

import torch

ANSWERS = ("full", "top", "rounded")


class Answers:
    """How much of the logits a response shows (see the module's docstring)."""

    def __init__(self, mode: str = "full", decimals: int = 1):
        if mode not in ANSWERS:
            raise ValueError(f"answers must be one of {ANSWERS}, not {mode!r}.")
        if not isinstance(decimals, int) or not 0 <= decimals <= 6:
            raise ValueError(f"decimals must be a whole number 0..6, not {decimals!r}.")
        self.mode, self.decimals = mode, decimals

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "full":
            return logits
        if self.mode == "top":
            top = logits.argmax(-1, keepdim=True)
            return torch.full_like(logits, -30.0).scatter_(-1, top, 0.0)
        scale = 10.0 ** self.decimals
        p = torch.round(torch.softmax(logits.float(), -1) * scale) / scale
        return torch.log(p.clamp_min(10.0 ** -(self.decimals + 1)))

    def __repr__(self) -> str:
        return self.mode if self.mode != "rounded" else f"rounded to {self.decimals} decimals"
