"""Calibration of biased label-word scores: the competition champion's and contextual calibration.

A language model prefers some label words whatever the input (notebook 01's "great" template).
Both methods rescale the label-word scores so that, on average, no word is favoured:

* ``"champion"`` (1st Gradient-Free Tuning Competition, National Science Review nwad124): with
  q̄ the mean label-word logit vector over all formatted training samples,
  W = λ · diag(q̄)⁻¹ and the calibrated prediction is softmax(W q). The report says λ rescales the
  logits back to their original scale; here λ = mean_i q̄_i, so that W q̄ = λ · 1: the average
  training sample gets equal logits for every label word, at the average height of the original
  logits. It needs q̄ > 0 (true of the label-word logits of the models here; checked).
* ``"contextual"`` (Zhao et al., *Calibrate Before Use*, ICML 2021): p_cf is the mean label-word
  probability for content-free inputs ("N/A", "", the mask token) and the calibrated prediction is
  softmax(log p − log p_cf), i.e. W = diag(p_cf)⁻¹ on probabilities.

``Calibration.fit`` estimates either from the model; ``Calibration.from_logits`` from logits the
API already returned. Inside the objectives of BBT, BBTv2 and AJO (``for_objective``), champion
calibration is estimated per candidate from that candidate's own training batch (``calibrate_batch``,
no extra calls), and contextual calibration is fitted once, under the manual prompt.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..data.splits import Example, Examples
from ..data.tasks import get_task

CALIBRATIONS = ("champion", "contextual")
CONTENT_FREE = ("N/A", "", "[MASK]")  # "[MASK]" stands for a masked LM's own mask token


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration. ``apply(logits)`` returns calibrated logits (..., classes).

    method: "champion" or "contextual"; reference: q̄ (champion) or p_cf (contextual), (classes,);
    scale: λ (champion) or 1.
    """

    method: str
    reference: tuple[float, ...]
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in CALIBRATIONS:
            raise ValueError(f"Calibration method must be one of {CALIBRATIONS}, not {self.method!r}.")
        if not np.isfinite(np.asarray(self.reference, dtype=float)).all() or not np.isfinite(self.scale):
            raise ValueError(f"A calibration needs finite numbers, got reference {self.reference} and scale "
                             f"{self.scale}; refit it on logits without NaN or inf.")

    @classmethod
    def from_logits(cls, logits, method: str = "champion") -> "Calibration":
        """Fit from label-word logits (n, classes): of training samples (champion), or of
        content-free inputs (contextual)."""
        q = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits).float()
        if q.ndim != 2 or len(q) == 0:
            raise ValueError(f"Calibration needs logits of shape (samples, classes), got {tuple(q.shape)}.")
        if not torch.isfinite(q).all():
            raise ValueError("Calibration got logits with NaN or inf; they come from a broken prompt or model. "
                             "Fit on the logits of a finite prompt.")
        if method == "contextual":
            p_cf = torch.softmax(q, -1).mean(0)
            return cls("contextual", tuple(p_cf.tolist()))
        q_bar = q.mean(0)
        if (q_bar <= 0).any():
            raise ValueError("Champion calibration divides by the mean label-word logits, which must be positive; "
                             f"got {q_bar.tolist()}. Use method='contextual' for this model.")
        return cls(method, tuple(q_bar.tolist()), float(q_bar.mean()))

    @classmethod
    def fit(cls, model, task, examples: Examples | None = None, method: str = "champion", prompt=None,
            position: str = "auto") -> "Calibration":
        """Fit on the model: champion on ``examples`` (the formatted training samples); contextual on
        the content-free inputs (``examples`` is then ignored). prompt: a tuned prompt to calibrate under."""
        from ..api.blackbox import label_logits

        task = get_task(task)
        if method not in CALIBRATIONS:
            raise ValueError(f"Calibration method must be one of {CALIBRATIONS}, not {method!r}.")
        if method == "contextual":
            examples = content_free_examples(model, task)
        elif examples is None or len(examples) == 0:
            raise ValueError("Champion calibration needs the training samples: Calibration.fit(model, task, split.train).")
        return cls.from_logits(label_logits(model, task, examples, prompt, position=position), method)

    def apply(self, logits) -> torch.Tensor:
        """Calibrated logits, same shape as logits (..., classes); argmax gives the calibrated prediction."""
        q = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits).float()
        ref = torch.tensor(self.reference, dtype=q.dtype)
        if q.shape[-1] != len(ref):
            raise ValueError(f"This calibration is for {len(ref)} classes, the logits have {q.shape[-1]}.")
        if self.method == "contextual":
            return torch.log_softmax(q, -1) - ref.log()
        return self.scale * q / ref  # W q with W = λ diag(q̄)⁻¹

    def probs(self, logits) -> torch.Tensor:
        """softmax(W q): calibrated label-word probabilities."""
        return torch.softmax(self.apply(logits), -1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(d["method"], tuple(d["reference"]), d.get("scale", 1.0))


def content_free_examples(model, task) -> Examples:
    """The content-free inputs of contextual calibration, formatted like the task's inputs."""
    task = get_task(task)
    mask = (getattr(model.tokenizer, "mask_token", None) or "") if model.family == "mlm" else ""
    texts = [mask if t == "[MASK]" else t for t in CONTENT_FREE]
    pair = "{text_b}" in task.template(model.family)
    return Examples([Example(t, t if pair else None, 0) for t in dict.fromkeys(texts)], name="content-free")


def calibrate_batch(logits: torch.Tensor, method: str) -> torch.Tensor:
    """Champion calibration of each candidate on its own batch: logits (pop, batch, classes) ->
    calibrated logits, with q̄ the candidate's mean over its batch (the formatted training samples).
    Candidates whose mean logits are not all positive are left as they are."""
    if method != "champion":
        raise ValueError("Only champion calibration is estimated from the training batch itself.")
    q_bar = logits.float().mean(1, keepdim=True)                    # (pop, 1, classes)
    ok = (q_bar > 0).all(-1, keepdim=True)
    scaled = q_bar.mean(-1, keepdim=True) * logits / q_bar.clamp_min(1e-6)
    return torch.where(ok, scaled, logits.float())


def for_objective(method: str | None, model, task, train: Examples, position: str = "auto"):
    """What BBT and BBTv2 apply to each candidate's training logits (pop, batch, classes).

    "champion": each candidate calibrated on its own training batch (no extra calls); fitted once
    here under the manual prompt, so that a model it cannot serve fails before tuning starts;
    "contextual": p_cf fitted once, under the manual prompt, and kept; None: nothing.
    """
    if method is None:
        return lambda logits: logits
    if method == "champion":
        Calibration.fit(model, task, train, "champion", position=position)
        return lambda logits: calibrate_batch(logits, "champion")
    return Calibration.fit(model, task, method="contextual", position=position).apply


def for_prompt(method: str, model, task, train: Examples, prompt, position: str = "auto") -> Calibration:
    """The calibration that goes with a tuned prompt, for dev and test: champion on the training
    samples under that prompt; contextual on the content-free inputs under the manual prompt
    (as in the objective)."""
    if method == "contextual":
        return Calibration.fit(model, task, method="contextual", position=position)
    return Calibration.fit(model, task, train, "champion", prompt=prompt, position=position)


def apply_for_prompt(method: str | None, model, task, train: Examples, prompt, logits,
                     position: str = "auto") -> torch.Tensor:
    """logits (..., classes) calibrated with ``for_prompt``'s calibration (unchanged when method is
    None): how BBT, BBTv2 and AJO score a prompt on the dev set."""
    if method is None:
        return logits
    return for_prompt(method, model, task, train, prompt, position).apply(logits)
