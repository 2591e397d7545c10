"""nevergrad's optimizers behind the ask/tell seam: differential evolution, PSO, (1+1)-ES, TBPSA, NGOpt and
the rest of its registry, for any space that CMA-ES searches.

``Nevergrad(name, dim, budget, seed)`` is one of them on R^dim, started at ``x0`` (the manual prompt)
with step size ``sigma``, asked ``popsize`` candidates per generation (nevergrad's ``num_workers``: the
candidates of a generation are evaluated together, as one API call each) and told their losses.

Checkpoints never pickle it. nevergrad draws from the parametrization's own ``RandomState``, seeded here,
and from nothing else, so an optimizer rebuilt with the same seed and told the same losses in the same
order asks the same candidates again: the tuning loop's resume, which replays the losses it recorded,
rebuilds it exactly (``tests/test_nevergrad.py`` proves it for every optimizer the course names).
"""
from __future__ import annotations

import difflib

import numpy as np

# The ones the course compares (chapter 3's "Which optimizer?"): nevergrad registry names.
COURSE = ("DE", "PSO", "OnePlusOne", "TBPSA", "NGOpt")


def registry() -> dict:
    """nevergrad's optimizer registry {name: class}; a sentence when nevergrad is missing."""
    try:
        import nevergrad
    except ImportError as err:  # pragma: no cover - a core dependency
        raise ImportError("This optimizer comes from nevergrad, which is not installed: pip install 'nevergrad>=1.0.12' "
                          "(or reinstall bbtkit, which depends on it).") from err
    return nevergrad.optimizers.registry


def check_name(name: str, where: str = "optimizer", builtin: tuple = ()) -> None:
    """Raise a ValueError naming the close matches unless ``name`` is in ``builtin`` or nevergrad's registry."""
    if name in builtin:
        return
    names = registry()
    if not isinstance(name, str) or name not in names:
        known = {n.lower(): n for n in [*sorted(names), *builtin]}
        close = [known[n] for n in difflib.get_close_matches(str(name).lower(), list(known), n=3, cutoff=0.6)]
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"{where} must be one of {', '.join(map(repr, builtin))} or the name of a nevergrad optimizer "
                         f"(e.g. {', '.join(map(repr, COURSE))}; nevergrad.optimizers.registry lists "
                         f"{len(names)}), not {name!r}.{hint}")


class Nevergrad:
    """One nevergrad optimizer behind the seam. ``budget``: the candidates it will be asked in all (some
    optimizers, NGOpt first, pick their strategy from it); ``bound``: the box [-bound, bound]^dim."""

    def __init__(self, name: str, dim: int, budget: int, seed: int = 0, popsize: int = 10, sigma: float = 1.0,
                 bound: float | None = None, x0=None):
        import nevergrad as ng

        check_name(name)
        if dim < 1 or popsize < 1 or budget < popsize or not sigma > 0:
            raise ValueError(f"Nevergrad({name!r}) needs dim >= 1, popsize >= 1, a budget of at least one generation "
                             f"and sigma > 0; got dim={dim}, popsize={popsize}, budget={budget}, sigma={sigma}.")
        x0 = np.zeros(dim) if x0 is None else np.asarray(x0, dtype=float).reshape(dim)
        if bound is not None:
            x0 = np.clip(x0, -bound, bound)
        param = ng.p.Array(init=x0).set_mutation(sigma=float(sigma))
        if bound is not None:
            param.set_bounds(-float(bound), float(bound))
        param.random_state = np.random.RandomState(int(seed) % 2**32)  # its only source of randomness
        self.name, self.popsize = name, int(popsize)
        self.opt = registry()[name](parametrization=param, budget=int(budget), num_workers=self.popsize)
        self.start = x0.copy()
        self.selected: np.ndarray | None = None
        self.pending: list = []      # the candidates of the generation asked and not yet told
        self.generations = 0

    def ask(self) -> np.ndarray:
        self.pending = [self.opt.ask() for _ in range(self.popsize)]
        return np.stack([np.asarray(c.value, dtype=float) for c in self.pending])    # (pop, dim)

    def tell(self, X, losses) -> None:
        losses = np.asarray(losses, dtype=float)
        if len(losses) != len(self.pending):
            raise ValueError(f"Nevergrad({self.name!r}) was asked {len(self.pending)} candidates and told "
                             f"{len(losses)} losses; tell the losses of the generation it was last asked.")
        for cand, y in zip(self.pending, losses):
            self.opt.tell(cand, float(y) if np.isfinite(y) else float(np.finfo(float).max))
        self.selected = np.asarray(X)[int(np.argmin(losses))].copy()
        self.pending, self.generations = [], self.generations + 1

    def stop(self) -> dict:
        return {}

    def info(self) -> dict:
        return {}

    def summary(self) -> dict:
        """What the result's stop record keeps: the optimizer, and what a selector (NGOpt) chose, down the chain
        of wrappers (NGOpt -> MetaModel -> CMA: a quadratic surrogate around nevergrad's CMA-ES)."""
        chain, inner = [self.name], self.opt
        for _ in range(4):
            inner = getattr(inner, "optim", None) or getattr(inner, "_optim", None)
            if inner is None:
                break
            name = str(getattr(inner, "name", type(inner).__name__)).lstrip("_").removeprefix("Parametrized")
            name = name.removesuffix("()")
            if name != chain[-1]:
                chain.append(name)
        return {"nevergrad": " -> ".join(chain)}

    def final(self) -> np.ndarray:
        """nevergrad's recommendation (its best estimate of the optimum)."""
        return np.asarray(self.opt.provide_recommendation().value, dtype=float)
