"""Objectives: what is scored from the API's outputs, per candidate.

An objective turns an :class:`~bbtkit.api.blackbox.APIOutput` (logits (pop, batch, classes), and the answer
hidden states when asked) into (losses (pop,), train metrics (pop,)); lower loss is better.

* ``"ce"``: cross-entropy of the label words; ``"hinge"``: every wrong class should trail the gold
  one by ``HINGE_MARGIN``; ``"neg_metric"``: minus the task's metric (accuracy or F1).
* ``calibrate``: a function applied to the logits first (``calibration.for_objective``).
* AJO's joint loss is :class:`bbtkit.methods.ajo.JointLoss`: the same losses on the log-probabilities of
  its mixture, with a local classifier that changes between phases.

``DevScore`` is the model-selection side: the task's metric of one search vector on the dev set.
"""
from __future__ import annotations

import numpy as np
import torch

from ..api.blackbox import BlackBoxLM
from . import calibration as calib

LOSSES = ("ce", "hinge", "neg_metric")
HINGE_MARGIN = 2.0


def candidate_losses(logits: torch.Tensor, labels: torch.Tensor, loss: str, task) -> tuple[np.ndarray, np.ndarray]:
    """Loss and train metric of each candidate. logits (pop, batch, classes), labels (batch,)."""
    logits = logits.float()
    pop = logits.shape[0]
    metric = np.array([task.score(logits[i].argmax(-1).numpy(), labels.numpy()) for i in range(pop)])
    if loss == "neg_metric":
        return -metric, metric
    if loss == "ce":
        target = labels.expand(pop, -1)
        values = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)
    elif loss == "hinge":
        gold = logits.gather(2, labels.expand(pop, -1)[..., None])  # (pop, batch, 1)
        gap = torch.relu(HINGE_MARGIN - (gold - logits))             # (pop, batch, classes)
        wrong = torch.ones_like(gap).scatter_(2, labels.expand(pop, -1)[..., None], 0.0)
        values = (gap * wrong).sum(2).mean(1)
    else:
        raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}.")
    return values.numpy(), metric


class Loss:
    """ce, hinge or neg_metric of the (optionally calibrated) label-word logits."""

    needs_hidden = False

    def __init__(self, task, loss: str = "ce", calibrate=None):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}.")
        self.task, self.loss, self.calibrate = task, loss, calibrate or (lambda logits: logits)

    def __call__(self, out) -> tuple[np.ndarray, np.ndarray]:
        return candidate_losses(self.calibrate(out.logits), out.labels, self.loss, self.task)


class DevScore:
    """The dev metric of one search vector, for every space: what the space asks the dev API for it
    (``space.ask_point``), calibrated as the method calibrates (``calibration.apply_for_prompt``);
    ``predict(logits, hidden)`` may replace the label-word argmax (AJO's mixture). Dev calls are model
    selection, not tuning: no budget."""

    def __init__(self, space, dev_api, task, model, train_examples, calibration: str | None, position: str,
                 predict=None):
        self.space, self.api, self.task, self.model = space, dev_api, task, model
        self.train, self.calibration, self.position, self.predict = train_examples, calibration, position, predict

    def __call__(self, z) -> float:
        out = self.space.ask_point(self.api, z, return_hidden=self.predict is not None)
        logits = out.logits[0] if self.calibration is None else calib.apply_for_prompt(
            self.calibration, self.model, self.task, self.train, self.space.prompt(z), out.logits[0], self.position)
        scores = logits if self.predict is None else self.predict(logits, out.hidden[0])
        return self.task.score(scores.argmax(-1).numpy(), self.api.labels.numpy())


def train_and_dev(model, task, split, budget: int, position: str, **train_options):
    """The two APIs a run asks: the training examples, counted against ``budget`` (``train_options``: the
    caches), and the dev examples, which score candidates for selection outside the budget."""
    return (BlackBoxLM(model, task, split.train, budget=budget, position=position, **train_options),
            BlackBoxLM(model, task, split.dev, position=position))
