"""Model extraction through the API (chapter 12): copy a served classifier (the prompted model and its
verbalizer) from its answers alone, and measure how often the copy agrees with it on inputs it never asked.

The attacker has unlabelled texts of the right kind (sentences of movie reviews for SST-2), sends them
through the black box, and trains a local copy on what comes back: softmax regression on hashed word and
word-pair counts, fitted to the answered probabilities (soft targets; with a top-label answer that is a
one-hot). The copy never sees a gold label or a weight. ``agreement`` is the share of held-out inputs on
which the copy's label equals the server's.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from ..api.blackbox import BlackBoxLM
from ..data.examples import Example, Examples

FEATURES = 2 ** 14
_WORD = re.compile(r"[a-z0-9']+")


def features(texts: list[str], dim: int = FEATURES) -> torch.Tensor:
    """(n, dim) hashed counts of each text's lower-cased words and word pairs, each row of unit length."""
    rows = torch.zeros(len(texts), dim)
    for i, t in enumerate(texts):
        words = _WORD.findall(t.lower())
        for g in words + [a + " " + b for a, b in zip(words, words[1:])]:
            rows[i, zlib.crc32(g.encode()) % dim] += 1.0
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-9)


@dataclass
class Copy:
    """A local copy of a served classifier: W (dim, classes), b (classes)."""

    W: torch.Tensor
    b: torch.Tensor

    def predict(self, texts: list[str]) -> np.ndarray:
        return (features(texts, self.W.shape[0]) @ self.W + self.b).argmax(-1).numpy()


def fit_copy(texts: list[str], answers: torch.Tensor, epochs: int = 300, lr: float = 0.5, l2: float = 1e-4,
             seed: int = 0) -> Copy:
    """Softmax regression of the answered probabilities (answers: (n, classes) logits as the server sent them)."""
    torch.manual_seed(seed)
    X, target = features(texts), torch.softmax(answers.float(), -1)
    W = torch.zeros(X.shape[1], target.shape[1], requires_grad=True)
    b = torch.zeros(target.shape[1], requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr * 0.1)
    for _ in range(epochs):
        opt.zero_grad()
        loss = -(target * torch.log_softmax(X @ W + b, -1)).sum(-1).mean() + l2 * W.pow(2).sum()
        loss.backward()
        opt.step()
    return Copy(W.detach(), b.detach())


def ask(model, task, texts: list[str], chunk: int = 400, **api_options) -> tuple[torch.Tensor, int]:
    """(answers (n, classes), API calls charged) for texts through the black box with no prompt: what an
    attacker gets back. One call answers a whole batch of ``chunk`` inputs: the server charges per
    candidate, not per input."""
    answers, calls = [], 0
    for s in range(0, len(texts), chunk):
        batch = Examples([Example(t, None, 0) for t in texts[s:s + chunk]], name="queries")
        api = BlackBoxLM(model, task, batch, **api_options)
        answers.append(api().logits[0])
        calls += api.calls
    return torch.cat(answers), calls


def extraction_curve(model, task, pool: list[str], held_out: list[str], sizes, server_labels: np.ndarray,
                     seed: int = 0, **api_options) -> list[dict]:
    """Agreement of a copy trained on the first n texts of ``pool`` (shuffled by seed), for n in sizes,
    with ``server_labels`` (the server's own labels on ``held_out``, measured once)."""
    order = np.random.default_rng(seed).permutation(len(pool))[:max(sizes)]
    texts = [pool[i] for i in order]
    answers, _ = ask(model, task, texts, **api_options)
    rows = []
    for n in sizes:
        copy = fit_copy(texts[:n], answers[:n], seed=seed)
        rows.append({"queries": int(n), "agreement": float(np.mean(copy.predict(held_out) == server_labels))})
    return rows
