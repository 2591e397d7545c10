"""Optimizers by name, for configs: ``"cma"`` (pycma, the papers' choice), ``"fireworks"`` (Tan & Zhu),
``"random"`` (random search, the control) or the name of any nevergrad optimizer (``"DE"``, ``"PSO"``,
``"NGOpt"``, ...). ``BBTConfig(optimizer=...)``, BBTv2's per-layer optimizer and DFO-LoRA's all come from here."""
from __future__ import annotations

from .fireworks import Fireworks
from .nevergrad_seam import Nevergrad, check_name
from .optimizers import CMA, Layerwise
from .random_search import RandomSearch

BUILTIN = ("cma", "fireworks", "random")


def check_optimizer(name: str, owner: str) -> None:
    """A ValueError naming ``owner``'s field and close matches unless ``name`` is an optimizer ``make`` builds."""
    check_name(name, f"{owner}: optimizer", BUILTIN)


def make(name: str, dim: int, *, popsize: int, sigma: float, seed: int, budget: int, bound: float | None = None,
         x0=None, fireworks: dict | None = None):
    """One optimizer on R^dim. popsize: candidates per generation (Fireworks sets its own from its losses,
    with ``fireworks``' settings, Tan & Zhu's by default, in the box [-bound, bound], 2 sigma without one);
    budget: the calls it will be asked in all (nevergrad's selectors read it)."""
    if name == "cma":
        return CMA(dim, sigma, popsize, seed, bound, x0)
    if name == "random":
        return RandomSearch(dim, sigma, popsize, seed, bound)
    if name == "fireworks":
        return Fireworks(dim, bound or 2.0 * sigma, seed=seed, x0=x0, **(fireworks or {}))
    return Nevergrad(name, dim, budget, seed, popsize, sigma, bound, x0)


def make_layerwise(name: str, dim: int, layers, *, popsize: int, sigma: float, seed: int, budget: int,
                   bound: float | None = None, fireworks: dict | None = None):
    """``Layerwise`` with one ``make(name, ...)`` per block (BBTv2's prompted layers, DFO-LoRA's adapted ones),
    seeded seed + layer, each told it gets an even share of the budget (with CMA-ES: BBTv2's LayerwiseCMA)."""
    share = max(-(-budget // len(layers)), popsize)
    return Layerwise([make(name, dim, popsize=popsize, sigma=sigma, seed=seed + l, budget=share, bound=bound,
                           fireworks=fireworks) for l in layers], names=list(layers))
