"""Checks that turn bad input into a sentence saying what to do, before any compute is charged.

Each guards against a *silent wrong answer* found by trying bad inputs as a new user would: a NaN in a
prompt gave a plausible 0.5 (every prediction class 0), labels outside the task's classes gave a
metric, and a prompt longer than the model's positions failed deep inside with an ``IndexError``.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch


class InputsCutWarning(UserWarning):
    """Some inputs were longer than ``max_length`` tokens and were cut to fit."""


def warn_cut(cut, max_length: int, what: str) -> None:
    """One warning for a set of examples whose text was cut to fit max_length (cut: tokens cut per example)."""
    cut = np.asarray(list(cut))
    n = int((cut > 0).sum())
    if n:
        warnings.warn(f"{n} of {len(cut)} {what} are longer than max_length={max_length} tokens with the template and "
                      f"were cut (the longest by {int(cut.max())} tokens), which can change their predictions. To keep "
                      f"them whole, raise the model's limit for every run and evaluation (model.max_length = "
                      f"{max_length + int(cut.max())}), or pass max_length= to BlackBoxLM or evaluate.",
                      InputsCutWarning, stacklevel=_outside_stacklevel())


def _outside_stacklevel() -> int:
    """The stacklevel of the first caller outside bbtkit (and the decorators of torch and contextlib), so
    that a warning names the user's line, not a line of ours."""
    import inspect
    from pathlib import Path

    ours = (str(Path(__file__).parent), str(Path(torch.__file__).parent), "contextlib")
    frame, level = inspect.currentframe().f_back, 1  # the function that warns is level 1
    while frame is not None and any(s in frame.f_code.co_filename for s in ours):
        frame, level = frame.f_back, level + 1
    return level


def finite_prompts(p: torch.Tensor) -> None:
    """Refuse candidate prompts (pop, ..., H) that hold NaN or inf, naming the first bad candidate."""
    if p.shape[0] == 0:
        raise ValueError("The population is empty (0 candidate prompts); pass at least one prompt.")
    bad = ~torch.isfinite(p.reshape(p.shape[0], -1)).all(-1)
    if bad.any():
        k = int(bad.nonzero()[0, 0])
        raise ValueError(f"Candidate prompt {k} of {p.shape[0]} holds NaN or inf values, which would give a "
                         "meaningless metric; nothing was evaluated or charged. Check what produced it "
                         "(e.g. a diverged optimizer or a step size too large).")


def labels_in_range(labels, task, what: str = "examples") -> None:
    """Every gold label must be one of the task's classes 0..C-1."""
    labels = np.asarray(labels)
    c = task.num_classes
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        bad = sorted({int(x) for x in labels if x < 0 or x >= c})
        raise ValueError(f"The {what} have labels {bad[:5]} outside 0..{c - 1}, the {c} classes of task "
                         f"{task.name!r} ({', '.join(task.class_names)}). Use a task with one label word per "
                         "class of this data, or fix the labels.")


def max_positions(lm) -> int | None:
    """How many tokens the model's position embeddings cover (None: no limit known)."""
    cfg = lm.config
    n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    if n is not None and cfg.model_type in ("roberta", "xlm-roberta", "camembert"):  # positions start after padding_idx
        n -= (cfg.pad_token_id or 0) + 1
    return n


def fits_positions(lm, width: int, n_prompt: int) -> None:
    """A formatted batch of ``width`` tokens must fit the model's positions."""
    limit = max_positions(lm)
    if limit is not None and width > limit:
        raise ValueError(f"{width} tokens ({n_prompt} prompt tokens plus the longest formatted example) do not fit "
                         f"the {limit} positions of {lm.name}. Use fewer prompt tokens, or a smaller max_length.")
