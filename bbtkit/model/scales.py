"""The scale of what a prompt (or an adapter's input) meets inside the model: what model-scaled
projections need, and the one thing a method may know of the model beyond its outputs.

``BlackBoxLM.value_scales`` is how methods read it; a service would publish these numbers once.
"""
from __future__ import annotations

import numpy as np
import torch

from . import inject
from .forward import Forward
from ..data.tasks import get_task


def embedding_scale(model) -> float:
    """The word embeddings' std: what a shallow prompt is added to."""
    return model.embeddings.weight.float().std().item()


def clipped_std(values: torch.Tensor, rounds: int = 5, k: float = 3.0) -> float:
    """Standard deviation after clipping outliers to mu +- k sigma, ``rounds`` times (BBTv2's deepbbt.py)."""
    x = values.double().flatten()
    for _ in range(rounds):
        mu, sd = x.mean(), x.std(unbiased=False)
        x = x.clamp(mu - k * sd, mu + k * sd)
    return float(x.std(unbiased=False))


@torch.no_grad()
def layer_scales(model, task, examples, n_prompt: int, position: str) -> np.ndarray:
    """sigma_hat per layer, (layers,): the word embeddings' std for layer 0; for layer l >= 1 the
    clipped std of the hidden states entering it, over every real (unpadded) token of the examples,
    with no prompt (BBTv2's first forward pass). Methods read it through ``BlackBoxLM.value_scales``."""
    fw = Forward(model, get_task(task), examples, n_prompt, position, use_cache=False)
    with inject.capture_inputs(model, range(1, model.num_layers)) as seen:
        fw.run(None, None, 1)
    real = fw.mask.bool()  # (batch, seq)
    scales = [embedding_scale(model)]
    scales += [clipped_std(seen[l][real]) for l in range(1, model.num_layers)]
    return np.array(scales)
