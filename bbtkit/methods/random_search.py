"""Random search: the control that CMA-ES must beat. BBT's space (z -> p = p0 + A z), its budget and
its loss, but every generation draws ``popsize`` candidates z ~ N(0, sigma^2 I) around the starting
point (the manual prompt) and learns nothing from their losses. The best candidate seen is kept
(selected on dev, as for BBT). What CMA-ES gains over this is what its adaptation is worth.
"""
from __future__ import annotations

from dataclasses import dataclass

from .bbt import BBTConfig, make_optimizer, run_shallow
from ..optim.random_search import RandomSearch  # noqa: F401  (notebooks and tests import it here)


@dataclass(frozen=True)
class RandomSearchConfig(BBTConfig):
    """BBT's fields and presets; sigma is the spread of the draws around the start (BBT's sigma0)."""

    optimizer: str = "random"

    def _check_optimizer(self) -> None:
        if self.optimizer != "random":
            raise ValueError(f"RandomSearchConfig: optimizer must be 'random', not {self.optimizer!r}; for another "
                             f"optimizer in BBT's space use BBTConfig(optimizer={self.optimizer!r}) with run_bbt.")


def run_random_search(model, task, split, cfg: RandomSearchConfig | None = None, **kw):
    """Random search in BBT's space with BBT's budget and loss; the same Result as ``run_bbt``."""
    return run_shallow("random", make_optimizer, model, task, split, cfg or RandomSearchConfig.cpu_quick(), **kw)
