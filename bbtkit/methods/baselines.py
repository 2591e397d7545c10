"""The two rows every tuned method must beat, as methods in their own right: the manual prompt
(the template alone, zero-shot) and in-context learning (one training example per class shown
before the input). Neither tunes anything nor spends a training API call; both return a
:class:`~bbtkit.tuning.results.Result` like the tuned methods, so that tables and the leaderboard read them alike.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..tuning import calibration as calib
from ..api.blackbox import evaluate
from ..fields import check_fields
from ..tuning.result_builder import build_result
from ..tuning.results import Result
from ..data.tasks import get_task


@dataclass(frozen=True)
class PromptConfig:
    """The manual prompt (demonstrations_per_class = 0) or in-context learning (>= 1)."""

    demonstrations_per_class: int = 0  # training examples of each class shown before the input
    seed: int = 42                     # the few-shot split's seed (nothing here is random)
    calibration: str | None = None     # calibrate the label-word logits on dev and test, fitted on the
                                       # training inputs: "champion", "contextual", or None

    def __post_init__(self) -> None:
        check_fields(self, nonneg=("demonstrations_per_class",),  # 0: the manual prompt
                     choices={"calibration": calib.CALIBRATIONS})

    @classmethod
    def cpu_quick(cls, seed: int = 42) -> "PromptConfig":
        return cls(seed=seed)

    @classmethod
    def paper(cls, seed: int = 42) -> "PromptConfig":
        return cls(seed=seed)


def demonstrations(split, per_class: int = 1):
    """In-context learning's demonstrations: the first ``per_class`` training examples of each class,
    interleaved class by class (so that the last one shown is not always the same class)."""
    by_class: dict[int, list] = {}
    for ex in split.train:
        by_class.setdefault(ex.label, []).append(ex)
    return [by_class[c][i] for i in range(per_class) for c in sorted(by_class) if i < len(by_class[c])]


def run_prompt(model, task, split, cfg: PromptConfig | None = None, *, display: bool = False,
               evaluate_test: bool = True, method: str | None = None) -> Result:
    """Score the manual template, or the template after demonstrations, on dev and test.

    With ``cfg.calibration``, the calibration is fitted as the tuned methods fit theirs (champion: on the
    training inputs under this prompt, demonstrations included; contextual: on the content-free inputs),
    applied on dev and test, and kept in the result (``res.calibration``)."""
    cfg = cfg or PromptConfig()
    t = get_task(task)
    t0 = time.perf_counter()
    k = cfg.demonstrations_per_class
    shown = t.with_demonstrations(demonstrations(split, k), model.family) if k else t
    cal = calib.for_prompt(cfg.calibration, model, shown, split.train, None) if cfg.calibration else None
    res = build_result(method or ("in_context" if k else "manual"), model, t, cfg, z=np.zeros((0, 1)), position="auto",
                       dev=evaluate(model, shown, split.dev, calibration=cal),
                       extra={} if cal is None else {"calibration": cal.to_dict()})
    if evaluate_test:
        res.test_metric = evaluate(model, shown, split.test, calibration=cal)
    res.seconds = time.perf_counter() - t0
    return res


def run_manual(model, task, split, cfg: PromptConfig | None = None, **kw) -> Result:
    """The manual prompt: the task's template and label words, nothing tuned (``cfg.calibration`` applies)."""
    cfg = dataclasses.replace(cfg or PromptConfig(), demonstrations_per_class=0)
    return run_prompt(model, task, split, cfg, method="manual", **kw)


def run_in_context(model, task, split, cfg: PromptConfig | None = None, **kw) -> Result:
    """In-context learning: ``cfg.demonstrations_per_class`` (at least 1) examples per class first."""
    cfg = cfg or PromptConfig(1)
    cfg = dataclasses.replace(cfg, demonstrations_per_class=max(1, cfg.demonstrations_per_class))
    return run_prompt(model, task, split, cfg, method="in_context", **kw)
