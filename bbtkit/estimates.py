"""How long a run will take, measured before it starts: a short pilot of the method itself.

A run's time has four parts, and a pilot measures each on this machine, this model and this task:

* **set-up**, once per run: formatting the training and dev sets and caching their contexts, the
  per-layer scales of BBTv2 and AJO (a forward pass over the training set), fitting a calibration
  for the objective and again for the result, and what the first call costs more than the others;
* **calls**: the seconds of a whole generation (ask, projection, API, layer cache, loss, tell; AJO's
  classifier phases among them) divided by its calls, times the calls the budget allows;
* **dev checks**: one at the start and one every ``eval_every`` calls (the dev set's forward, and the
  calibration's fit under the prompt when the config calibrates);
* **the test evaluation**: seconds per test example, times the test set's size.

``pilot`` runs the registry method for a few generations without the test set (``res.history`` records
each generation's seconds), times one dev check and a slice of the test set apart, and takes the set-up
as what is left of the run's seconds: ``res.seconds - calls x per call - dev checks x per dev check``.

Not included: loading the model, the pilot itself (mostly one run's set-up), saving the result, and other
programs sharing the machine. Two known leans: BBTv2's and AJO's pilot calls are at the bottom layers,
where a call runs every layer; above them the layer cache runs only the layers from the tuned one up, so
over a full round their calls cost less (up to about half), and the estimate errs high on them. The test
slice is one batch of the first examples, padded to its longest; the whole set, sorted by length, pads less.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import time
import warnings
from dataclasses import dataclass

import torch

from . import calibration as calib
from .api import BlackBoxLM, evaluate
from .checks import PartialRoundWarning
from .methods import get_method
from .tasks import get_task


@dataclass(frozen=True)
class Estimate:
    """A method's measured costs, in seconds; ``minutes(budget)`` predicts a whole run from them."""

    method: str                 # the registry's name
    setup: float                # s once per run (see the module's docstring)
    per_call: float             # s per training API call, the generation's own work included
    per_dev: float              # s per dev check
    per_test: float             # s per test example
    generation: int             # calls per generation (popsize); 0 for a method that spends none
    start_calls: int = 0        # calls before the first generation (BBTv2's starting prompt, AJO's first phase)
    eval_every: int | None = None  # the config's: a dev check every this many calls, besides the start
    n_test: int = 0             # the split's test examples
    pilot_seconds: float = 0.0  # what the pilot took

    def __post_init__(self) -> None:
        for name in ("setup", "per_call", "per_dev", "per_test", "pilot_seconds"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"Estimate: {name} must be a finite number of seconds >= 0, not {v!r}.")
        if self.generation < 0 or self.start_calls < 0 or self.n_test < 0:
            raise ValueError("Estimate: generation, start_calls and n_test must be >= 0.")

    def calls(self, budget: int) -> int:
        """The calls a run of ``budget`` spends: the start, then whole generations (0 for a method that tunes nothing)."""
        if not self.generation:
            return 0
        least = self.start_calls + self.generation
        if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < least:
            raise ValueError(f"{self.method}: a budget of {budget!r} calls is below one generation ({least} calls: "
                             f"{'the start and ' if self.start_calls else ''}popsize {self.generation}), so the run "
                             f"would tune nothing. Give at least {least}, or size it with budget_for(minutes).")
        return self.start_calls + (int(budget) - self.start_calls) // self.generation * self.generation

    def dev_checks(self, budget: int, eval_every: int | None = None) -> int:
        """Dev checks of a run, as ``loop.tune`` makes them: at the start, then after the first generation that
        reaches each next multiple of eval_every."""
        if not self.generation:
            return 0
        every, used = eval_every or self.eval_every, self.calls(budget)
        n, spent, due = 1, self.start_calls, every
        while every and spent + self.generation <= used:
            spent += self.generation
            if spent >= due:
                n, due = n + 1, (spent // every + 1) * every
        return n

    def parts(self, budget: int, eval_every: int | None = None, n_test: int | None = None) -> dict:
        """Seconds of each part of a run (``"total"`` their sum), with the counts behind them."""
        n_test = self.n_test if n_test is None else n_test
        if n_test < 0:
            raise ValueError(f"n_test must be >= 0 test examples, not {n_test}.")
        calls, devs = self.calls(budget), self.dev_checks(budget, eval_every)
        out = {"setup": self.setup, "calls": calls, "call_seconds": calls * self.per_call, "dev_checks": devs,
               "dev_seconds": devs * self.per_dev, "n_test": n_test, "test_seconds": n_test * self.per_test}
        out["total"] = out["setup"] + out["call_seconds"] + out["dev_seconds"] + out["test_seconds"]
        return out

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
        calls = (f", {p['calls']} calls × {self.per_call:.3f} s, {p['dev_checks']} dev check{'s' * (p['dev_checks'] != 1)} × {self.per_dev:.1f} s"
                 if self.generation else "")
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


def shared_budget(estimates, minutes: float, step: int = 10, n_test: int | None = None) -> int:
    """The largest budget, a multiple of ``step``, at which every method's run (one each, the same budget)
    fits ``minutes`` together, set-up and evaluations included. estimates: Estimates, or a dict of them."""
    _check_minutes(minutes)
    ests = list(estimates.values()) if isinstance(estimates, dict) else list(estimates)
    least = max([e.start_calls + e.generation for e in ests if e.generation] or [step])
    k0 = math.ceil(least / step)  # the smallest multiple of step that covers one generation of each

    def total(k: int) -> float:
        return sum(e.minutes((k0 - 1 + k) * step, n_test=n_test) for e in ests)

    def too_short():
        return ValueError(f"{minutes} min do not cover the methods' set-up, evaluations and one generation each "
                          f"({total(1):.1f} min at a budget of {k0 * step}). Give more minutes, fewer methods, "
                          "or evaluate on fewer test examples.")

    return (k0 - 1 + _largest(lambda k: total(k) <= minutes, too_short)) * step


def pilot(method: str, model, task, split, cfg=None, calls: int | None = None, test_examples: int = 64) -> Estimate:
    """Measure a method's costs with a short run of it (``calls`` API calls, no test set; default two
    generations and a little: 2 x popsize + 2), one timed dev check and ``test_examples`` test examples.

    cfg: the config the real run will use (default: the registry's cpu_quick preset); the pilot runs it
    with ``budget=calls``, and with no dev check but the start's (timed apart instead)."""
    t0, m, task = time.perf_counter(), get_method(method), get_task(task)
    cfg = cfg or m.preset(task.name, split.seed)
    changes = {}
    if m.tunes:
        changes["budget"] = calls = calls or 2 * getattr(cfg, "popsize", 10) + 2
        if hasattr(cfg, "eval_every"):
            changes["eval_every"] = calls + 1
    with warnings.catch_warnings():  # a pilot's budget is short on purpose
        warnings.simplefilter("ignore", PartialRoundWarning)
        res = m.run(model, task, split, dataclasses.replace(cfg, **changes), display=False, evaluate_test=False)
    per_call, generation, start = _generations(res.history, method) if m.tunes else (0.0, 0, 0)
    per_dev = _time_dev(model, task, split, cfg, res) if m.tunes else 0.0
    per_test = _time_test(model, task, split.test[:test_examples], res) if len(split.test) else 0.0
    devs = sum(row.get("dev_metric") is not None for row in res.history)
    setup = max(0.0, res.seconds - per_call * res.api_calls - devs * per_dev)
    return Estimate(method, setup, per_call, per_dev, per_test, generation, start, getattr(cfg, "eval_every", None),
                    len(split.test), time.perf_counter() - t0)


def _generations(rows: list[dict], method: str) -> tuple[float, int, int]:
    """(seconds per call, calls per generation, calls before the first generation) from a run's records.
    The first record that spent calls carries the run's first-call costs (set-up) and is left out, as is
    any record with a dev check."""
    spent, last = [], 0  # (calls before, calls spent, seconds, dev checked) of each record that spent calls
    for row in rows:
        if row["calls"] > last:
            spent.append((last, row["calls"] - last, row["seconds"], row.get("dev_metric") is not None))
            last = row["calls"]
    generation = max((n for _, n, _, _ in spent), default=0)
    clean = [(n, s) for _, n, s, dev in spent[1:] if not dev]
    if not generation or not clean:
        raise ValueError(f"The pilot of {method} recorded {len(spent)} step(s) that spent calls, too few to time a "
                         "generation apart from the set-up. Give it more calls (at least 2 x popsize + 2).")
    start = next(before for before, n, _, _ in spent if n == generation)
    return sum(s for _, s in clean) / sum(n for n, _ in clean), generation, start


def _time_dev(model, task, split, cfg, res) -> float:
    """Seconds of one dev check as the run's dev score makes it: the dev set's forward under the prompt
    (formatted once before, as in the run) and the calibration's fit under it when the config calibrates."""
    prompt = res.prompt if torch.is_tensor(res.prompt) else None
    api = BlackBoxLM(model, task, split.dev, position=res.position)
    ask = (lambda: api(None if prompt is None else prompt[None], return_hidden=res.classifier is not None))
    ask()  # the first call formats the dev set and caches its context: set-up, in the run too
    t0 = time.perf_counter()
    ask()
    if getattr(cfg, "calibration", None):
        calib.for_prompt(cfg.calibration, model, task, split.train, prompt, res.position)
    return time.perf_counter() - t0


def _time_test(model, task, examples, res) -> float:
    """Seconds per example of the test evaluation the run would make (AJO's: its mixture's parts)."""
    t0 = time.perf_counter()
    if res.classifier is not None:
        from .ajo import evaluate_parts
        evaluate_parts(model, task, examples, res)
    else:
        evaluate(model, task, examples, res.prompt, position=res.position, calibration=res.calibration,
                 adapters=res.adapters)
    return (time.perf_counter() - t0) / len(examples)
