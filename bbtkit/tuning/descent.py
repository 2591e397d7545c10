"""The gradient loop: what the gradient baselines share, the counterpart of ``tune`` for gradient descent.

AJO's Feature-MLP (f's epochs on API outputs), MeZO's Adam reference (``whitebox.mezo.run_backprop``) and the
paper's IPL (``whitebox.ipl_gradient``) all take ``steps`` steps, score the dev set every ``eval_every`` steps
and at the last, and keep a copy of what was learned at the step with the strictly best dev score. Each says
only what one step does, how the dev set is scored and what a copy is; the loop, the selection, the records
and the progress bar are here, once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch


@dataclass
class Descent:
    """What a gradient run found: one record per step, the best dev score, its step (0: none scored better
    than -inf, the start) and the copy taken there."""
    history: list[dict] = field(default_factory=list)
    best_dev: float = -np.inf
    best_step: int = 0
    best: object = None


def descend(step: Callable[[int], dict], steps: int, *, score: Callable[[], float], snapshot: Callable[[], object],
            eval_every: int = 1, desc: str | None = None, unit: str = "step") -> Descent:
    """Run ``step(i)`` for i = 1..steps; each returns its record (its loss), to which the dev score is added
    (``dev_metric``, None between scorings). ``score()`` runs without gradients every ``eval_every`` steps and
    at the last; a strictly better score keeps ``snapshot()``. desc: a progress bar's label (None: no bar)."""
    from .loop import progress_bar

    if steps < 1 or eval_every < 1:
        raise ValueError(f"A gradient run needs steps >= 1 and eval_every >= 1, got {steps} and {eval_every}.")
    found, done = Descent(best=snapshot()), False
    bar = progress_bar(steps, desc, unit=unit) if desc else None
    try:
        for i in range(1, steps + 1):
            row = step(i)
            row["dev_metric"] = None
            if i % eval_every == 0 or i == steps:
                with torch.no_grad():
                    row["dev_metric"] = score()
                if row["dev_metric"] > found.best_dev:
                    found.best_dev, found.best_step, found.best = row["dev_metric"], i, snapshot()
            found.history.append(row)
            if bar is not None:
                bar.update(1)
        done = True
    finally:
        if bar is not None:  # short when the run was cut
            bar.close(ok=done)
    return found
