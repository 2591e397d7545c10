"""What a run returns: the dev score of each tuned z against the start's, with the dev set's noise in view.

A few-shot dev set is small: SST-2's holds 32 examples (16 per class), so one example is 3.1 points,
and the standard error of a proportion p measured on n examples, sqrt(p (1 - p) / n), is 8.1 points at
p = 0.7. A tuned z that beats the start by one or two dev examples has shown nothing: on new data it is
as likely to be worse (chapter 09 measures this for DFO-LoRA, on 1,000 held-out SST-2 sentences).

The loop keeps the start (every method's start is its untuned model: the manual prompt, B = 0) and
replaces it only with a z whose dev score is

* strictly higher than everything kept before (the rule of BBT's code, ``select_se = 0``), and
* with ``select_se = k > 0``, higher than the start's score by more than k standard errors of the
  start's score on the dev set (the binomial's, for accuracy; F1 is treated alike, a rough guide).

Every run records how its z was chosen (``res.extra["selection"]``); a tuned z whose gain over the start
is within one standard error carries a note saying so, whichever rule chose it.
"""
from __future__ import annotations

import math

import numpy as np


def standard_error(p: float, n: int) -> float:
    """sqrt(p (1 - p) / n): the standard error of a proportion p measured on n examples (0 without n)."""
    if not n:
        return 0.0
    p = min(max(float(p), 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / n)


def dev_size(dev) -> int:
    """How many examples a dev scorer reads: its ``examples``, or its ``api``'s (0 when it does not say)."""
    examples = getattr(dev, "examples", None)
    if examples is None:
        examples = getattr(getattr(dev, "api", None), "examples", None)
    return len(examples) if examples is not None else 0


class Selection:
    """The loop's rule for replacing what it keeps (see the module's text)."""

    def __init__(self, select_se: float = 0.0, dev=None, n: int | None = None):
        if isinstance(select_se, bool) or not isinstance(select_se, (int, float, np.integer, np.floating)) \
                or not math.isfinite(select_se) or select_se < 0:
            raise ValueError(f"select_se must be a finite number >= 0 (standard errors of the start's dev score "
                             f"that a tuned z must beat it by; 0: strictly better), not {select_se!r}.")
        self.select_se = float(select_se)
        self.n = dev_size(dev) if n is None else int(n)

    def margin(self, start: float | None) -> float:
        """How far above the start's dev score a tuned z must be."""
        return 0.0 if start is None else self.select_se * standard_error(start, self.n)

    def replaces(self, value: float, best: float, start: float | None) -> bool:
        """Does a z scoring value on dev replace the one kept (scoring best)? start: the start's dev score,
        None when z is the start itself (or the start was not scored)."""
        return value > best and (start is None or value > start + self.margin(start))

    def pick(self, devs) -> int:
        """Which of a run's dev scores (the start's first, then in the order the loop met them) this rule
        returns, as an index: the same choice the loop makes, replayed on a recorded dev curve (the rule
        does not steer the optimizer, so another rule's choice can be read off a finished run)."""
        devs = [float(d) for d in devs]
        kept = 0
        for i, d in enumerate(devs[1:], 1):
            if self.replaces(d, devs[kept], devs[0]):
                kept = i
        return kept

    def record(self, history: list[dict], best_dev: float, best_is_start: bool) -> dict:
        """How the returned z was chosen: the start's and the returned dev scores, the gain, the dev set's
        standard error at the start's score, and a note when a tuned z won by less than that."""
        start = history[0].get("dev_metric") if history else None
        if start is None or not np.isfinite(best_dev):
            return {}
        se, gain = standard_error(start, self.n), float(best_dev) - float(start)
        rec = {"select_se": self.select_se, "n_dev": self.n, "start_dev": float(start), "returned_dev": float(best_dev),
               "gain": gain, "standard_error": se, "kept_start": bool(best_is_start)}
        if not best_is_start and self.n and gain <= se:
            rec["note"] = (f"the returned z beats the start by {gain:.3f} on {self.n} dev examples, within one standard "
                           f"error ({se:.3f}): it may be no better than the start on new data; select_se=1 keeps the "
                           "start in such a case.")
        return rec
