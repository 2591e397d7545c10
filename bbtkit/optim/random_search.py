"""Random search behind the ask/tell seam: the control that every optimizer must beat."""
from __future__ import annotations

import numpy as np


class RandomSearch:
    """Draws popsize points from N(start, sigma^2 I) every generation, from its own seeded generator, and
    learns nothing from their losses (``bbtkit.methods.random_search`` runs it in BBT's space)."""

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
