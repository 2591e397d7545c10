"""AJO's local classifier f, trained on the API's hidden states by gradient descent, and the mixture
p(y | x) = mix * softmax(W q) + (1 - mix) * softmax(f(h)) it predicts with (``bbtkit.methods.ajo``).

f is ours: plain tensors come back from the API, so no gradient can reach the language model.
"""
from __future__ import annotations

import torch
from torch import nn

HEADS = ("linear", "mlp")


def make_head(kind: str, hidden: int, classes: int, width: int = 128, seed: int = 0) -> nn.Module:
    """f: a normalised hidden state (hidden,) -> class logits (classes,). Seeded initialisation."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, not {kind!r}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        norm = nn.LayerNorm(hidden, elementwise_affine=False)  # h's scale differs a lot between models
        if kind == "linear":
            return nn.Sequential(norm, nn.Linear(hidden, classes))
        return nn.Sequential(norm, nn.Linear(hidden, width), nn.ReLU(), nn.Linear(width, classes))


def head_spec(cfg, hidden: int, classes: int) -> dict:
    """What rebuilds f on load (its weights are saved beside the result); cfg: an AJOConfig."""
    return {"kind": cfg.head, "hidden": hidden, "classes": classes, "width": cfg.head_width, "mix": cfg.mix}


def mixture(lm_probs: torch.Tensor, head_logits: torch.Tensor, mix: float) -> torch.Tensor:
    """mix * softmax(W q) + (1 - mix) * softmax(f(h)): probabilities (..., classes)."""
    return mix * lm_probs + (1.0 - mix) * torch.softmax(head_logits, -1)


@torch.no_grad()
def joint_log_probs(lm_logits: torch.Tensor, hidden: torch.Tensor, head: nn.Module, mix: float) -> torch.Tensor:
    """log p(y | x) of the mixture; lm_logits are calibrated (..., classes), hidden (..., H)."""
    head.eval()
    return mixture(torch.softmax(lm_logits.float(), -1), head(hidden.float()), mix).clamp_min(1e-12).log()


def train_head(head: nn.Module, opt: torch.optim.Optimizer, hidden: torch.Tensor, lm_probs: torch.Tensor,
               labels: torch.Tensor, mix: float, epochs: int, batch_size: int, gen: torch.Generator) -> float:
    """Gradient descent on f alone: the joint loss -log p(y | x), the LM's probabilities fixed.

    hidden (n, H) and lm_probs (n, classes) are plain tensors from the API: no gradient can reach
    the language model. Returns the mean loss of the last epoch.
    """
    hidden, lm_probs, labels = hidden.float().detach(), lm_probs.float().detach(), labels.long()
    head.train()
    for _ in range(epochs):
        order, total = torch.randperm(len(labels), generator=gen), 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            p = mixture(lm_probs[idx], head(hidden[idx]), mix)
            loss = -p.gather(1, labels[idx, None]).clamp_min(1e-12).log().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
    head.eval()
    return total / len(labels)
