"""An optimizer that alternates with another phase: AJO's prompts and classifier, through the ask/tell seam.

``Alternating(opt, phase, every)`` is ``opt`` (any optimizer with ``rescore``, e.g. ``LayerwiseCMA``) with
one more step of its own. Before the first generation, and then after every ``every`` generations, the
tuning loop runs ``interlude()``: ``phase()`` does something other than a search step (AJO fits its
classifier f by gradient descent, spending ``interlude_calls`` API calls) and returns its history row and
the incumbent's loss under the changed objective, which the loop tells the optimizer with ``rescore``.

So the loop knows nothing of AJO: it asks an optimizer whether an interlude is ``due()``, and keeps in its
checkpoints, and beside the best dev score, whatever the phase learns (``learned``: an object with
``state()``, ``load_state(state)`` and ``snapshot()``). The count of generations since the last phase is
rebuilt on resume from the replayed ``tell`` and ``rescore`` events, like every optimizer's state.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class Alternating:
    """``opt`` with ``phase`` run first and then every ``every`` generations (0 or None: only first).

    ``names``: (the search's phase, the other phase) as history rows and the stop record call them: rows of
    a generation get ``"phase": names[0]``, and the stop record counts ``f"{names[1]} phases"``.
    """

    def __init__(self, opt, phase: Callable[[], tuple[dict, float]], every: int | None, *, learned=None,
                 interlude_calls: int = 1, names: tuple[str, str] = ("prompts", "classifier")):
        if not hasattr(opt, "rescore"):
            raise TypeError(f"Alternating needs an optimizer with rescore (the incumbent's loss after each phase), "
                            f"e.g. LayerwiseCMA; got {type(opt).__name__}.")
        self.opt, self.phase, self.every, self.learned = opt, phase, every, learned
        self.interlude_calls, self.names = int(interlude_calls), tuple(names)
        self.phases, self.since = 0, 0  # phases run; generations told since the last one

    def due(self) -> bool:
        """Whether the next step is the other phase: the first step, then every ``every`` generations."""
        return self.phases == 0 or bool(self.every) and self.since >= self.every

    def interlude(self) -> tuple[dict, float]:
        """Run the other phase: (its history row, the incumbent's loss), which the loop passes to ``rescore``."""
        return self.phase()

    def rescore(self, loss: float) -> None:
        self.opt.rescore(loss)
        self.phases, self.since = self.phases + 1, 0

    @property
    def popsize(self) -> int:
        return self.opt.popsize

    @property
    def start(self) -> np.ndarray:
        return self.opt.start

    @property
    def selected(self):
        return self.opt.selected

    def ask(self) -> np.ndarray:
        return self.opt.ask()

    def tell(self, X, losses) -> None:
        self.opt.tell(X, losses)
        self.since += 1

    def stop(self) -> dict:
        return self.opt.stop()

    def info(self) -> dict:
        return {**self.opt.info(), "phase": self.names[0]}

    def summary(self) -> dict:
        return {**getattr(self.opt, "summary", dict)(), f"{self.names[1]} phases": self.phases}

    def final(self) -> np.ndarray:
        return self.opt.final()
