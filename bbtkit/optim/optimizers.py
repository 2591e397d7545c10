"""Optimizers behind the ask/tell seam: they see search vectors and losses, nothing else.

Every optimizer has the interface of pycma's ``OOOptimizer``::

    X = opt.ask()            # candidates, (pop, dim) or (pop, blocks, dim)
    opt.tell(X, losses)      # their losses, (pop,)
    opt.stop()               # {} while it goes on, else {reason: value}

plus three things the tuning loop (``bbtkit.tuning.loop``) reads: ``opt.start`` (the starting point, which
competes in model selection), ``opt.selected`` (the point the last generation puts forward for a
dev evaluation) and ``opt.info()`` (what goes into the generation's record: sigma, layer, ...).

Optimizers here are deterministic given their seed and the losses they are told, so their state
never needs pickling: replaying the recorded losses rebuilds it exactly (``loop.tune(resume=...)``).
pycma draws from NumPy's global generator, which it seeds when a strategy is created; a replay
creates the strategies again and asks in the same order, so it draws the same samples.
"""
from __future__ import annotations

import cma
import numpy as np


def cma_options(popsize: int, seed: int, bound: float | None = None, **extra) -> dict:
    """pycma options: population size, seed, optional box bounds [-bound, bound], no files, quiet.

    pycma reads seed 0 as "draw a random seed", so the seed is shifted by one: seed 0 is reproducible too.
    """
    opts = {"popsize": int(popsize), "seed": int(seed) + 1, "verbose": -9, "verb_log": 0, "verb_disp": 0}
    if bound:
        opts["bounds"] = [-float(bound), float(bound)]
    opts.update(extra)
    return opts


class CMA:
    """CMA-ES (pycma) on R^dim: BBT's optimizer."""

    def __init__(self, dim: int, sigma0: float = 1.0, popsize: int = 20, seed: int = 0,
                 bound: float | None = None, x0=None):
        x0 = np.zeros(dim) if x0 is None else np.asarray(x0, dtype=float)
        self.es = cma.CMAEvolutionStrategy(x0, sigma0, cma_options(popsize, seed, bound))
        self.start = np.asarray(self.es.mean, dtype=float).copy()  # x0 as pycma holds it
        self.selected: np.ndarray | None = None

    @property
    def popsize(self) -> int:
        return self.es.popsize

    def ask(self) -> np.ndarray:
        return np.asarray(self.es.ask())                      # (pop, dim)

    def tell(self, X, losses) -> None:
        losses = np.asarray(losses, dtype=float)
        self.es.tell(list(X), losses.tolist())
        self.selected = np.asarray(X)[int(np.argmin(losses))].copy()

    def stop(self) -> dict:
        return dict(self.es.stop())

    def info(self) -> dict:
        return {"sigma": float(self.es.sigma)}

    def start_info(self) -> dict:
        return {"sigma": float(self.es.sigma0)}

    def final(self) -> np.ndarray:
        """Where the distribution ended (pycma's favourite solution)."""
        return np.asarray(self.es.result.xfavorite)


class Layerwise:
    """BBTv2's divide and conquer with any optimizer: one per block (a prompted layer, or a layer's
    adapters), one generation at a time, bottom to top and round again.

    A candidate is the whole (blocks, dim) matrix: every block's kept z, with the active block's row
    replaced by a sample. A block's new z is kept only if the whole prompt gets better than the
    incumbent (the kept z of every block), whose loss the loop tells with ``rescore`` (at the start,
    and whenever the objective changes, as in AJO). ``names`` label the blocks in records (layers).
    ``strategies``: one optimizer per block, each with ``ask``/``tell``/``stop``/``info`` on R^dim
    (``CMA``, ``fireworks.Fireworks``).
    """

    def __init__(self, strategies, names=None):
        self.strategies = list(strategies)
        dims = {len(st.start) for st in self.strategies}
        if not self.strategies or len(dims) != 1:
            raise ValueError(f"Layerwise needs at least one block and one dimension for all, got {sorted(dims)}.")
        self.names = list(range(len(self.strategies))) if names is None else list(names)
        self.Z = np.zeros((len(self.strategies), dims.pop()))   # the kept z of each block
        self.start = self.Z.copy()
        self.incumbent = float("inf")          # the kept Z's loss under the current objective
        self.stopped: dict[int, dict] = {}
        self.cursor, self.round, self.active = 0, 0, None
        self.selected: np.ndarray | None = None

    @property
    def popsize(self) -> int:
        """The size of the next generation (the next active block's)."""
        return self.strategies[self._next()[0]].popsize

    def rescore(self, loss: float) -> None:
        """The incumbent's loss, evaluated anew (the objective may have changed)."""
        self.incumbent = float(loss)

    def _next(self) -> tuple[int, int]:
        """(block, cursor after it): the next block that has not stopped; a round begins at block 0."""
        i = self.cursor
        for _ in range(len(self.strategies)):
            if i not in self.stopped:
                break
            i = (i + 1) % len(self.strategies)
        return i, (i + 1) % len(self.strategies)

    def ask(self) -> np.ndarray:
        i, self.cursor = self._next()
        if self.active is None or i <= self.active:  # back at the bottom: a new round
            self.round += 1
        self.active = i
        X = self.strategies[i].ask()                                   # (pop, dim)
        cand = np.repeat(self.Z[None], len(X), axis=0)                 # (pop, blocks, dim)
        cand[:, i] = X
        return cand

    def tell(self, cand, losses) -> None:
        i, losses = self.active, np.asarray(losses, dtype=float)
        self.strategies[i].tell(np.asarray(cand)[:, i], losses)
        b = int(np.argmin(losses))
        if losses[b] < self.incumbent:  # keep the block's new z only if the whole prompt improves
            self.incumbent, self.Z[i] = float(losses[b]), cand[b, i]
        if self.strategies[i].stop():
            self.stopped[i] = self.strategies[i].stop()
        self.selected = self.Z.copy()

    def stop(self) -> dict:
        return {"all blocks stopped": len(self.stopped)} if len(self.stopped) == len(self.strategies) else {}

    def start_info(self) -> dict:
        return {"round": 0, "layer": None, **getattr(self.strategies[0], "start_info", dict)()}

    def info(self) -> dict:
        return {"layer": self.names[self.active], "round": self.round, "incumbent_loss": self.incumbent,
                **self.strategies[self.active].info()}

    def summary(self) -> dict:
        """Stop details for the result: rounds begun, and each block's own stop reasons."""
        return {"rounds": self.round, **{f"layer {self.names[i]}": s for i, s in self.stopped.items()}}

    def final(self) -> np.ndarray:
        return self.Z.copy()


class LayerwiseCMA(Layerwise):
    """BBTv2's optimizer: ``Layerwise`` with one CMA-ES per block, seeded each."""

    def __init__(self, blocks: int, dim: int, sigma0: float, popsize: int, seeds, bound: float | None = None,
                 names=None):
        seeds = list(seeds)
        if len(seeds) != blocks:
            raise ValueError(f"LayerwiseCMA needs one seed per block ({blocks}), got {len(seeds)}.")
        super().__init__([CMA(dim, sigma0, popsize, s, bound) for s in seeds], names)
