"""The generation scoring call: candidate prompts in, the log-probabilities of reference outputs out.

Services that return ``logprobs`` for a given continuation offer this: for each candidate prompt, how
likely the model finds each example's reference output (teacher-forced, token by token). It is what lets
BBT tune a continuous prompt for a generation task, maximising the reference's likelihood, without ever
seeing a gradient. One candidate is one API call, as for ``BlackBoxLM``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from .blackbox import BudgetExceededError, as_prompts
from ..data.splits import Examples
from ..data.tasks import get_task
from ..model.references import ReferenceForward
from ..model.templates import resolve_position


class ReferenceScorer:
    """Score reference outputs under candidate prompts, with a budget of API calls.

    ``scorer(prompts)`` with prompts (pop, tokens, hidden) returns (pop, examples, T) log-probabilities of
    the reference tokens (NaN after a reference's last token); ``scorer.token_counts`` gives each
    reference's length. task: its causal template reads the input (``{text_a}``) and ends where the output
    begins (``{mask}``); references: one text per example (the examples' labels are not used).
    """

    def __init__(self, model, task, examples: Examples, references, budget: int | None = None, *,
                 position: str = "auto", use_cache: bool = True, max_length: int | None = None):
        if getattr(model, "remote", False):
            raise NotImplementedError("The class server does not serve the scoring call yet; score locally.")
        if budget is not None and (not isinstance(budget, (int, np.integer)) or budget < 1):
            raise ValueError(f"budget must be a positive number of API calls (or None for unlimited), not {budget!r}.")
        self.model, self.task, self.examples, self.budget = model, get_task(task), examples, budget
        self.references = [str(r) for r in references]
        self.position = resolve_position(model, position)
        self._opts = dict(use_cache=use_cache, max_length=max_length or model.max_length)
        self._forwards: dict[int, ReferenceForward] = {}
        self.calls = 0
        self.call_seconds: list[float] = []

    def forward_for(self, n_prompt: int) -> ReferenceForward:
        if n_prompt not in self._forwards:
            self._forwards[n_prompt] = ReferenceForward(self.model, self.task, self.examples, self.references,
                                                        n_prompt, self.position, **self._opts)
        return self._forwards[n_prompt]

    @property
    def token_counts(self) -> torch.Tensor:
        """(examples,) tokens of each reference output."""
        return self.forward_for(0).valid.sum(1).cpu()

    def __call__(self, prompts=None) -> torch.Tensor:
        pop, shallow, deep = as_prompts(prompts, self.model)
        if deep is not None:
            raise ValueError("The scoring call takes shallow prompts (pop, tokens, hidden), not deep ones.")
        if self.budget is not None and self.calls + pop > self.budget:
            raise BudgetExceededError(f"{pop} more calls would exceed the budget of {self.budget} "
                                      f"({self.calls} used).")
        t0 = time.perf_counter()
        out = self.forward_for(0 if shallow is None else shallow.shape[1]).run(shallow, pop)
        self.calls += pop
        self.call_seconds += [(time.perf_counter() - t0) / pop] * pop
        return out


def generate_with_prompt(model, task, examples: Examples, prompt=None, *, position: str = "auto",
                         max_new_tokens: int = 8, stop=("\n",), batch_size: int = 16) -> list[str]:
    """What the service writes under a continuous prompt ((n, H), or None: the template alone): the greedy
    continuation of each example's template, cut before a stop string (``model.prompted_generation``)."""
    if getattr(model, "remote", False):
        raise NotImplementedError("The class server does not serve generation under a continuous prompt yet.")
    from ..model.prompted_generation import greedy_with_prompt

    return greedy_with_prompt(model, get_task(task), examples, prompt, position=resolve_position(model, position),
                              max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size)
