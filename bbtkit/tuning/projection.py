"""Random projections A: a d-dimensional search vector z becomes a prompt p = p0 + A z.

Two kinds, as in the papers:

* ``"uniform"``: entries drawn from U(-1/sqrt(d), 1/sqrt(d)), PyTorch's default ``Linear``
  initialisation, which the BBT code uses (BBT paper, Table 2).
* ``"normal"``: entries drawn from N(0, std^2) with std = alpha * sigma_hat / (sqrt(d) * sigma),
  where sigma_hat is the standard deviation of the values the prompt is added to (the word
  embeddings for a shallow prompt; a layer's hidden states for BBTv2) and sigma is CMA-ES's
  initial step size. Then A z, with z ~ N(0, sigma^2 I), has entries of standard deviation
  alpha * sigma_hat: prompts start on the model's own scale.

A is drawn from a seed and rebuilt from it; a saved result stores the seed, never A.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

KINDS = ("uniform", "normal")


def normal_std(sigma_hat: float, d: int, sigma: float, alpha: float = 1.0) -> float:
    """std = alpha * sigma_hat / (sqrt(d) * sigma) (BBTv2's model-scaled normal projection)."""
    return alpha * sigma_hat / (math.sqrt(d) * sigma)


@dataclass(frozen=True)
class Projection:
    """A fixed random matrix (out_dim, d) mapping z (d,) to a flat prompt (out_dim,).

    kind: "uniform" or "normal"; std: the normal distribution's standard deviation (unused for uniform).
    """

    d: int
    out_dim: int
    seed: int
    kind: str = "uniform"
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"projection kind must be one of {KINDS}, not {self.kind!r}")
        if self.d < 1 or self.out_dim < 1:
            raise ValueError(f"projection sizes must be positive, got d={self.d}, out_dim={self.out_dim}")

    @property
    def bound(self) -> float:
        """Half-width of the uniform distribution, 1/sqrt(d)."""
        return 1.0 / math.sqrt(self.d)

    def matrix(self) -> torch.Tensor:
        """A, (out_dim, d) float32, rebuilt identically from the seed every time."""
        g = torch.Generator().manual_seed(int(self.seed))
        if self.kind == "uniform":
            return (torch.rand(self.out_dim, self.d, generator=g) * 2 - 1) * self.bound
        return torch.randn(self.out_dim, self.d, generator=g) * self.std

    def __call__(self, z) -> torch.Tensor:
        """z (d,) or (pop, d) -> (out_dim,) or (pop, out_dim)."""
        z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        return z @ self._cached().T

    def _cached(self) -> torch.Tensor:
        a = self.__dict__.get("_A")
        if a is None:
            a = self.matrix()
            object.__setattr__(self, "_A", a)
        return a
