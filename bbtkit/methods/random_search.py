"""Random search: the control that CMA-ES must beat. BBT's space (z -> p = p0 + A z), its budget and
its loss, but every generation draws ``popsize`` candidates z ~ N(0, sigma^2 I) around the starting
point (the manual prompt) and learns nothing from their losses. The best candidate seen is kept
(selected on dev, as for BBT). What CMA-ES gains over this is what its adaptation is worth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bbt import BBTConfig, run_shallow


class RandomSearch:
    """Draws popsize points from N(start, sigma^2 I) every generation, from its own seeded generator."""

    def __init__(self, dim: int, sigma: float, popsize: int, seed: int, bound: float | None = None):
        self.start, self.sigma, self.popsize, self.bound = np.zeros(dim), float(sigma), int(popsize), bound
        self.rng = np.random.default_rng(seed)
        self.selected: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        X = self.start + self.sigma * self.rng.standard_normal((self.popsize, len(self.start)))
        return X if self.bound is None else np.clip(X, -self.bound, self.bound)

    def tell(self, X, losses) -> None:
        self.selected = np.asarray(X)[int(np.argmin(losses))].copy()

    def stop(self) -> dict:
        return {}

    def info(self) -> dict:
        return {"sigma": self.sigma}

    def final(self) -> np.ndarray:
        return self.start.copy()


@dataclass(frozen=True)
class RandomSearchConfig(BBTConfig):
    """BBT's fields and presets; sigma is the spread of the draws around the start (BBT's sigma0)."""


def run_random_search(model, task, split, cfg: RandomSearchConfig | None = None, **kw):
    """Random search in BBT's space with BBT's budget and loss; the same Result as ``run_bbt``."""
    return run_shallow("random", lambda c: RandomSearch(c.intrinsic_dim, c.sigma, c.popsize, c.seed, c.bound),
                       model, task, split, cfg or RandomSearchConfig.cpu_quick(), **kw)
