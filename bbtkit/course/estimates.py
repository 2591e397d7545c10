"""How long a run will take, from costs measured before it starts (``bbtkit.course.pilots.pilot``: a short run of the method).

A run's time has four parts, and a pilot measures each on this machine, this model and this task:

* **set-up**, once per run: formatting the training and dev sets and caching their contexts, the
  per-layer scales of BBTv2 and AJO (a forward pass over the training set), fitting a calibration
  for the objective and again for the result, and what the first call costs more than the others;
* **calls**: the seconds of a whole generation (ask, projection, API, layer cache, loss, tell; AJO's
  classifier phases among them) divided by its calls, times the calls the budget allows;
* **dev checks**: one at the start and one every ``eval_every`` calls (the dev set's forward, and the
  calibration's fit under the prompt when the config calibrates);
* **the test evaluation**: seconds per test example, times the test set's size.

BBTv2's and AJO's calls cost less the higher the layer they tune: the layer cache runs only the layers
from the tuned one up (on SmolLM2, a call at the top layer costs about a tenth of one at the bottom). Their
pilot tunes the bottom and the top prompted layer, one generation each, and the estimate interpolates
between the two, layer by layer, over the run's schedule (``bbtkit.tuning.schedule``: the start, AJO's classifier
phases, each generation's layer, the dev checks), with the cache's own cost of moving up a layer.
DFO-LoRA's layers are not modelled so: its estimate uses the pilot's mean call.

Not included: loading the model, the pilot itself (mostly one run's set-up), saving the result, and other
programs sharing the machine. The test slice is one batch of the first examples, padded to its longest;
the whole set, sorted by length, pads less.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from ..tuning.schedule import Step, steps


@dataclass(frozen=True)
class Estimate:
    """A method's measured costs, in seconds; ``minutes(budget)`` predicts a whole run from them."""

    method: str                 # the registry's name
    setup: float                # s once per run (see the module's docstring)
    per_call: float             # s per training API call, the generation's own work included (layer-wise: at the bottom layer)
    per_dev: float              # s per dev check
    per_test: float             # s per test example
    generation: int             # calls per generation (popsize); 0 for a method that spends none
    start_calls: int = 0        # calls before the first generation (BBTv2's starting prompt, AJO's first phase)
    eval_every: int | None = None  # the config's: a dev check every this many calls, besides the start
    n_test: int = 0             # the split's test examples
    pilot_seconds: float = 0.0  # what the pilot took
    layers: tuple[int, ...] = ()   # a layer-wise method's prompted layers, tuned bottom to top, round after round
    per_call_top: float | None = None  # s per call at the top prompted layer (None: every call costs per_call)
    cache_per_layer: float = 0.0   # s the layer cache takes to move up one layer
    per_phase: float = 0.0      # s per AJO classifier phase (its call and its epochs)
    phase_every: int = 0        # AJO: a classifier phase every this many generations (0: none)

    def __post_init__(self) -> None:
        for name in ("setup", "per_call", "per_dev", "per_test", "pilot_seconds", "cache_per_layer", "per_phase"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"Estimate: {name} must be a finite number of seconds >= 0, not {v!r}.")
        top = self.per_call_top
        if top is not None and not (isinstance(top, (int, float)) and math.isfinite(top) and top >= 0):
            raise ValueError(f"Estimate: per_call_top must be None or a finite number of seconds >= 0, not {top!r}.")
        if self.generation < 0 or self.start_calls < 0 or self.n_test < 0 or self.phase_every < 0:
            raise ValueError("Estimate: generation, start_calls, n_test and phase_every must be >= 0.")
        object.__setattr__(self, "layers", tuple(int(l) for l in self.layers))

    def steps(self, budget: int, eval_every: int | None = None) -> list[Step]:
        """The run's steps within ``budget`` (``bbtkit.tuning.schedule``); [] for a method that tunes nothing."""
        if not self.generation:
            return []
        least = self.start_calls + self.generation
        if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < least:
            raise ValueError(f"{self.method}: a budget of {budget!r} calls is below one generation ({least} calls: "
                             f"{'the start and ' if self.start_calls else ''}popsize {self.generation}), so the run "
                             f"would tune nothing. Give at least {least}, or size it with budget_for(minutes).")
        return steps(int(budget), self.generation, self.start_calls, self.layers, self.phase_every,
                     eval_every or self.eval_every)

    def calls(self, budget: int) -> int:
        """The calls a run of ``budget`` spends: the start, AJO's phases and whole generations (0 for a method that tunes nothing)."""
        run = self.steps(budget)
        return run[-1].calls if run else 0

    def dev_checks(self, budget: int, eval_every: int | None = None) -> int:
        """Dev checks of a run, as ``loop.tune`` makes them: at the start, then after the first step that reaches
        each next multiple of eval_every."""
        return sum(s.dev for s in self.steps(budget, eval_every))

    def call_at(self, layer: int | None) -> float:
        """Seconds of one call at ``layer``: per_call at the bottom prompted layer, per_call_top at the top,
        linear in between (the layer cache runs the layers from the tuned one up)."""
        if layer is None or self.per_call_top is None or len(self.layers) < 2:
            return self.per_call
        lo, hi = self.layers[0], self.layers[-1]
        return self.per_call + (self.per_call_top - self.per_call) * (layer - lo) / (hi - lo)

    def _step_seconds(self, run: list[Step]) -> float:
        total, below = 0.0, 0
        for step in run:
            if step.kind == "phase" or step.kind == "start" and self.phase_every:
                total += self.per_phase
            elif step.kind == "start":
                total += step.calls * self.per_call
            else:
                total += self.generation * self.call_at(step.layer)
                if step.layer is not None:  # the cache moves up from the layer below (from 0 at a round's start)
                    below = below if below < step.layer else 0
                    total += self.cache_per_layer * (step.layer - below)
                    below = step.layer
        return total

    def parts(self, budget: int, eval_every: int | None = None, n_test: int | None = None) -> dict:
        """Seconds of each part of a run (``"total"`` their sum), with the counts behind them."""
        n_test = self._n_test(n_test)
        run = self.steps(budget, eval_every)
        calls, devs = (run[-1].calls if run else 0), sum(s.dev for s in run)
        out = {"setup": self.setup, "calls": calls, "call_seconds": self._step_seconds(run), "dev_checks": devs,
               "dev_seconds": devs * self.per_dev, "n_test": n_test, "test_seconds": n_test * self.per_test}
        out["total"] = out["setup"] + out["call_seconds"] + out["dev_seconds"] + out["test_seconds"]
        return out

    def fixed_minutes(self, n_test: int | None = None) -> float:
        """The minutes of a run that no budget changes: set-up and the test evaluation."""
        return (self.setup + self._n_test(n_test) * self.per_test) / 60

    def _n_test(self, n_test: int | None) -> int:
        n_test = self.n_test if n_test is None else n_test
        if n_test < 0:
            raise ValueError(f"n_test must be >= 0 test examples, not {n_test}.")
        return n_test

    def minutes(self, budget: int, eval_every: int | None = None, n_test: int | None = None) -> float:
        """The predicted minutes of a whole run: set-up + calls + dev checks + test evaluation."""
        return self.parts(budget, eval_every, n_test)["total"] / 60

    def budget_for(self, minutes: float, eval_every: int | None = None, n_test: int | None = None) -> int:
        """The largest budget (the start plus whole generations) whose run fits ``minutes``."""
        _check_minutes(minutes)
        if not self.generation:
            raise ValueError(f"{self.method} tunes nothing: its {self.minutes(0, eval_every, n_test):.1f} min do not "
                             "depend on a budget.")
        return _largest(lambda k: self.minutes(self.start_calls + k * self.generation, eval_every, n_test) <= minutes,
                        lambda: self._too_short(minutes, eval_every, n_test)) * self.generation + self.start_calls

    def _too_short(self, minutes, eval_every, n_test):
        least = self.start_calls + self.generation
        return ValueError(f"{minutes} min do not cover one generation of {self.method}: set-up, {least} calls and "
                          f"the evaluations take {self.minutes(least, eval_every, n_test):.1f} min. Give at least that, "
                          "or evaluate on fewer test examples.")

    def describe(self, budget: int, eval_every: int | None = None, n_test: int | None = None) -> str:
        """One line: the predicted minutes and their parts."""
        p = self.parts(budget, eval_every, n_test)
        per = p["call_seconds"] / p["calls"] if p["calls"] else self.per_call
        spread = (f" on average: {self.per_call:.3f} at layer {self.layers[0]}, {self.per_call_top:.3f} at layer "
                  f"{self.layers[-1]}" if self.per_call_top is not None and len(self.layers) > 1 else "")
        calls = (f", {p['calls']} calls × {per:.3f} s{spread}, {p['dev_checks']} dev check"
                 f"{'s' * (p['dev_checks'] != 1)} × {self.per_dev:.1f} s" if self.generation else "")
        return (f"estimated {p['total'] / 60:.1f} min (set-up {p['setup']:.0f} s{calls}, "
                f"test {p['test_seconds']:.0f} s for {p['n_test']} examples)")


def _check_minutes(minutes) -> None:
    if not isinstance(minutes, (int, float)) or not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"minutes must be a finite number >= 0, not {minutes!r}; e.g. MINUTES = 6.")


def _largest(fits, too_short, cap: int = 10**6) -> int:
    """The largest k >= 1 with fits(k) (fits is monotone: true up to some k); too_short() is raised when k = 1 does not fit."""
    if not fits(1):
        raise too_short()
    lo, hi = 1, 2
    while hi < cap and fits(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def shared_budget(estimates, minutes: float, step: int = 10, n_test: int | None = None, *,
                  tuning_only: bool = False) -> int:
    """The largest budget, a multiple of ``step``, at which every method's run (one each, the same budget)
    fits ``minutes`` together, set-up and evaluations included. estimates: Estimates, or a dict of them.

    tuning_only=True: ``minutes`` are for the tuning alone (calls and dev checks); set-up and the test
    evaluation, which no budget changes, come on top (``fixed_minutes`` says how many), so that a task
    with long inputs or many classes still gets a budget, and the total is stated before the runs."""
    _check_minutes(minutes)
    ests = list(estimates.values()) if isinstance(estimates, dict) else list(estimates)
    least = max([e.start_calls + e.generation for e in ests if e.generation] or [step])
    k0 = math.ceil(least / step)  # the smallest multiple of step that covers one generation of each

    def total(k: int) -> float:
        b = (k0 - 1 + k) * step
        return sum(e.minutes(b, n_test=n_test) - tuning_only * e.fixed_minutes(n_test) for e in ests)

    def too_short():
        what, fewer = (("tuning (calls and dev checks)", "") if tuning_only else
                       ("set-up, evaluations and one generation each", ", or evaluate on fewer test examples"))
        return ValueError(f"{minutes} min do not cover the methods' {what} ({total(1):.1f} min at a budget of "
                          f"{k0 * step}). Give more minutes or fewer methods{fewer}.")

    return (k0 - 1 + _largest(lambda k: total(k) <= minutes, too_short)) * step


def fixed_minutes(estimates, n_test: int | None = None) -> float:
    """The minutes of the methods' runs that no budget changes: set-up and test evaluation, all together."""
    ests = estimates.values() if isinstance(estimates, dict) else estimates
    return sum(e.fixed_minutes(n_test) for e in ests)
