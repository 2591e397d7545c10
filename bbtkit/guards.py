"""Input guards: they turn bad input into a sentence saying what to do, before any compute is charged.

Each guards against a *silent wrong answer* found by trying bad inputs as a new user would: a NaN in a
prompt gave a plausible 0.5 (every prediction class 0), labels outside the task's classes gave a
metric, and a prompt longer than the model's positions failed deep inside with an ``IndexError``.
"""
from __future__ import annotations

import math
import numbers
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


class PartialRoundWarning(UserWarning):
    """A layer-by-layer method (BBTv2, AJO) whose budget ends before one round has reached the top layer."""


def warn_partial_round(note: str) -> None:
    """Warn, before a run starts, that its budget does not cover one round over its layers (note: what to do)."""
    warnings.warn(note, PartialRoundWarning, stacklevel=_outside_stacklevel())


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


def first_nonfinite(t: torch.Tensor) -> int | None:
    """The first candidate (along dim 0) holding NaN or inf, or None."""
    bad = ~torch.isfinite(t.reshape(t.shape[0], -1)).all(-1)
    return int(bad.nonzero()[0, 0]) if bad.any() else None


def finite_prompts(p: torch.Tensor) -> None:
    """Refuse candidate prompts (pop, ..., H) that hold NaN or inf, naming the first bad candidate."""
    if p.shape[0] == 0:
        raise ValueError("The population is empty (0 candidate prompts); pass at least one prompt.")
    k = first_nonfinite(p)
    if k is not None:
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


# --- adapters (DFO-LoRA's candidates): what the client sends, checked before the service runs it -------
ADAPTER_TARGETS = ("q", "k", "v")
_ADAPTERS = "{layer: {'q' | 'k' | 'v': (A (pop, r, in), B (pop, out, r))}}"


def adapter_weights(weights, scale) -> tuple[dict, float]:
    """Adapters as ``AdapterSet`` holds them: whole-number layers >= 0, known targets, (A, B) pairs as tensors
    (numpy arrays are converted) of matching shapes and one population, finite values; a finite scale."""
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real) or not math.isfinite(scale):
        raise ValueError(f"AdapterSet: scale must be a finite number, not {scale!r}; a NaN or inf scale would make "
                         "every logit NaN.")
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f"AdapterSet: weights must be a dict {_ADAPTERS} with at least one layer, "
                         f"not {weights!r:.80}.")
    out = {}
    for layer, per in weights.items():
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, numbers.Integral) or layer < 0:
            raise ValueError(f"AdapterSet: layer {layer!r} ({type(layer).__name__}) must be a layer index, a whole "
                             f"number from 0 (weights are {_ADAPTERS}).")
        if not isinstance(per, dict) or not per:
            raise ValueError(f"AdapterSet: layer {layer} must map targets to (A, B) pairs, {{'q': (A, B)}}, "
                             f"not {per!r:.80}.")
        out[int(layer)] = {}
        for target, pair in per.items():
            where = f"AdapterSet: layer {layer}, target {target!r}"
            if target not in ADAPTER_TARGETS:
                raise ValueError(f"{where}: targets must be among {ADAPTER_TARGETS}.")
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                n = f"{len(pair)} values" if isinstance(pair, (tuple, list)) else type(pair).__name__
                raise ValueError(f"{where}: give a pair (A (pop, r, in), B (pop, out, r)), not {n}.")
            out[int(layer)][target] = tuple(_as_tensor(x, f"{where}: {name}") for x, name in zip(pair, "AB"))
    pops = {t.shape[0] if t.ndim else 0 for per in out.values() for pair in per.values() for t in pair}
    if len(pops) != 1 or 0 in pops:
        raise ValueError(f"Adapters need the same number (>= 1) of candidates in every A and B, got {sorted(pops)}.")
    for layer, per in out.items():
        for target, (A, B) in per.items():
            if A.ndim != 3 or B.ndim != 3 or A.shape[1] != B.shape[2]:
                raise ValueError(f"Adapter {target} of layer {layer}: A must be (pop, r, in) and B (pop, out, r) "
                                 f"with one rank r, got {tuple(A.shape)} and {tuple(B.shape)}.")
            for name, T in (("A", A), ("B", B)):
                k = first_nonfinite(T)
                if k is not None:
                    raise ValueError(f"Adapter {target} of layer {layer}: {name} of candidate {k} holds NaN or inf "
                                     "values, which would give a meaningless metric; nothing was evaluated or charged.")
    return out, float(scale)


def _as_tensor(x, where: str) -> torch.Tensor:
    if torch.is_tensor(x):
        return x
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float32))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a tensor or numpy array of numbers, not {type(x).__name__}.") from None


def adapters_fit(adapters, shapes: dict, num_layers: int, model: str) -> None:
    """Adapters must name layers of the model and match its projections: shapes {target: (in, out)}."""
    for layer, per in adapters.weights.items():
        if layer >= num_layers:
            raise ValueError(f"Adapters name layer {layer}, but {model} has layers 0..{num_layers - 1}.")
        for target, (A, B) in per.items():
            d_in, d_out = shapes[target]
            if A.shape[2] != d_in or B.shape[1] != d_out:
                raise ValueError(f"Adapter {target} of layer {layer}: {model} needs A (pop, r, {d_in}) and B (pop, "
                                 f"{d_out}, r), got {tuple(A.shape)} and {tuple(B.shape)}.")


class NonFiniteLogitsError(ValueError):
    """A candidate's forward pass gave NaN or inf logits; nothing was scored or charged."""


def finite_logits(logits: torch.Tensor) -> None:
    """Refuse to score logits (pop, batch, classes) that hold NaN or inf: finite but huge prompt or adapter
    values (say 1e30) overflow inside the forward, and NaN logits would score as a plausible 0.5."""
    k = first_nonfinite(logits)
    if k is not None:
        raise NonFiniteLogitsError(f"Candidate {k} of {logits.shape[0]} gives NaN or inf logits: its prompt or adapter "
                                   "values are so large that the forward pass overflowed. Nothing was scored or "
                                   "charged; use values of the size of the model's own (see BlackBoxLM.value_scales).")


class ModelMismatchWarning(UserWarning):
    """A result is loaded for a model other than the one it was tuned with."""


def warn_model(res, model, path) -> None:
    """Warn when a saved result (tuned with res.model) is to be evaluated with another model."""
    name = getattr(model, "name", model)
    if str(name) != res.model:
        warnings.warn(f"{path} was tuned with model {res.model!r}, not {name!r}: a prompt or adapters tuned for one "
                      "model mean nothing to another, even one of the same size. (If it is the same model under "
                      "another name, ignore this.)", ModelMismatchWarning, stacklevel=_outside_stacklevel())
