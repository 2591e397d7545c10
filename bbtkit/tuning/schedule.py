"""The steps a tuning loop takes within a budget, worked out before the run: what ``loop.tune`` spends.

``steps`` follows ``loop.tune``'s rules without running anything, so an estimate counts the same calls,
classifier phases and dev checks as the run will make (a test runs both and compares them):

* a start: BBTv2's and AJO's starting prompt (1 call: its loss is the incumbent to beat; AJO's first
  classifier phase makes that call) or nothing (BBT: 0 calls), with the first dev check;
* then generations of ``popsize`` calls while a whole one fits the budget; a layer-wise method's
  generation ``g`` tunes ``layers[g % len(layers)]``, bottom to top and round again;
* AJO: a classifier phase (1 call) before every ``phase_every``-th generation, when the phase and the
  generation after it both fit;
* a dev check after any step that reaches the next multiple of ``eval_every`` calls.

The loop can end sooner (an optimizer's own stop, a checkpoint that cannot be written); the schedule
assumes it does not.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    kind: str              # "start", "phase" (AJO's classifier) or "generation"
    calls: int             # calls spent after this step
    layer: int | None      # the layer a layer-wise generation tunes; else None
    dev: bool              # whether the step ends with a dev check


def steps(budget: int, popsize: int, start_calls: int = 0, layers: tuple[int, ...] = (), phase_every: int = 0,
          eval_every: int | None = None) -> list[Step]:
    """Every step of a run of ``budget`` calls, in order (see the module's docstring)."""
    if popsize <= 0:
        raise ValueError(f"popsize must be >= 1 call per generation, not {popsize}.")
    out = [Step("start", start_calls, None, True)]
    used, since, gens, next_dev = start_calls, 0, 0, eval_every or 0

    def add(kind: str, layer: int | None) -> None:
        nonlocal next_dev
        dev = bool(eval_every) and used >= next_dev
        if dev:
            next_dev = (used // eval_every + 1) * eval_every
        out.append(Step(kind, used, layer, dev))

    while True:
        if phase_every and since >= phase_every:
            if used + 1 + popsize > budget:
                break
            used, since = used + 1, 0
            add("phase", None)
        if used + popsize > budget:
            break
        used, since = used + popsize, since + 1
        add("generation", layers[gens % len(layers)] if layers else None)
        gens += 1
    return out
