"""CMA-ES for the course: ``minimize`` (pycma's ``fmin`` on bbtkit's one tuning loop), 2-D test
functions, a recorder for the pictures of notebook 02, and CMA-ES written out by hand.

The heart of it is the loop every chapter shows::

    es = cma.CMAEvolutionStrategy(d * [0], sigma0, options)
    while not es.stop():
        X = es.ask()                       # popsize candidates z
        es.tell(X, [loss(x) for x in X])   # CMA-ES moves its mean and covariance

``minimize`` adds what a tuning run needs around it: a budget in API calls (one call per
candidate), a record per generation (best and mean loss, train metric, wall time), a dev
evaluation every ``eval_every`` calls with model selection on the best dev result, and the
reasons it stopped. Display only reads the records; ``display=False`` runs silently.
"""
from __future__ import annotations

from typing import Callable

import cma
import numpy as np

from ..tuning.loop import Trace, tune  # noqa: F401  (Trace: what minimize returns)
from ..optim.optimizers import CMA, cma_options  # noqa: F401  (notebooks import cma_options from here)


def minimize(objective: Callable, dim: int, *, budget: int, popsize: int = 20, sigma0: float = 1.0,
             bound: float | None = None, seed: int = 0, x0=None, eval_every: int | None = None,
             dev: Callable | None = None, callback: Callable | None = None, display: bool = False,
             desc: str = "CMA-ES", checkpoint=None, resume=None) -> Trace:
    """Minimise objective over R^dim with CMA-ES within ``budget`` evaluations: pycma's ``fmin`` for
    this course, the tuning loop (``bbtkit.tuning.loop.tune``) with the ``CMA`` optimizer.

    objective(X (pop, dim)) -> losses (pop,), or (losses, train metrics (pop,)).
    dev(z (dim,)) -> dev metric (higher is better), called on the starting point and then every
    ``eval_every`` calls on the generation's best candidate; the returned ``best_z`` is the one
    with the best dev metric (a later one must be strictly better).
    callback(trace) runs after every generation (live plots read the trace there).
    """
    if budget < popsize:
        raise ValueError(f"budget ({budget}) must allow at least one generation of popsize {popsize}.")
    opt = CMA(dim, sigma0, popsize, seed, bound, x0)
    return tune(objective, opt, budget=budget, dev=dev, eval_every=eval_every, callback=callback,
                display=display, desc=desc, checkpoint=checkpoint, resume=resume)


# --- for reading and drawing: 2-D test functions, a recorder, and CMA-ES by hand -------------------
def sphere(x) -> float:
    return float(np.sum(np.square(x)))


def ellipsoid(x, ratio: float = 100.0) -> float:
    """Axis-aligned, ill-conditioned: the scale grows by ``ratio`` from the first axis to the last."""
    x = np.asarray(x, float)
    return float(np.sum(ratio ** (np.arange(len(x)) / max(1, len(x) - 1)) * x ** 2))


def rosenbrock(x) -> float:
    x = np.asarray(x, float)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


TEST_FUNCTIONS = {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock}


def record_generations(f: Callable, x0, sigma0: float = 0.5, popsize: int = 8, seed: int = 0,
                       generations: int = 30) -> list[dict]:
    """Run pycma on f and keep, per generation: the population X (pop, dim), their losses, the
    selected (best mu) rows, and the mean and covariance sigma^2 C of the distribution X came from."""
    es = cma.CMAEvolutionStrategy(np.asarray(x0, float), sigma0, cma_options(popsize, seed))
    frames = []
    for _ in range(generations):
        mean, cov = es.mean.copy(), es.sigma ** 2 * np.asarray(es.sm.covariance_matrix).copy()
        X = np.asarray(es.ask())
        losses = np.array([f(x) for x in X])
        es.tell(list(X), losses.tolist())
        frames.append({"X": X, "losses": losses, "selected": np.argsort(losses)[:es.sp.weights.mu],
                       "mean": mean, "cov": cov, "sigma": es.sigma, "best": float(losses.min())})
        if es.stop():
            break
    return frames


class HandCMA:
    """(mu/mu_w, lambda)-CMA-ES in a few lines, to read next to pycma (Hansen, *The CMA Evolution
    Strategy: A Tutorial*, 2016). Mean: weighted recombination of the best mu samples; step size:
    cumulative step-size adaptation; covariance: rank-one plus rank-mu updates."""

    def __init__(self, x0, sigma0: float, popsize: int):
        n = self.n = len(x0)
        self.mean, self.sigma, self.lam = np.asarray(x0, float), float(sigma0), popsize
        self.mu = popsize // 2
        w = np.log((popsize + 1) / 2) - np.log(np.arange(1, self.mu + 1))  # decreasing positive weights
        self.w = w / w.sum()
        self.mueff = 1 / np.sum(self.w ** 2)
        self.cs = (self.mueff + 2) / (n + self.mueff + 5)                      # step-size path rate
        self.ds = 1 + 2 * max(0, np.sqrt((self.mueff - 1) / (n + 1)) - 1) + self.cs
        self.cc = (4 + self.mueff / n) / (n + 4 + 2 * self.mueff / n)          # covariance path rate
        self.c1 = 2 / ((n + 1.3) ** 2 + self.mueff)                            # rank-one learning rate
        self.cmu = min(1 - self.c1, 2 * (self.mueff - 2 + 1 / self.mueff) / ((n + 2) ** 2 + self.mueff))
        self.C, self.ps, self.pc = np.eye(n), np.zeros(n), np.zeros(n)
        self.chi_n = np.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n ** 2))       # E||N(0, I)||

    def ask(self, rng: np.random.Generator) -> np.ndarray:
        """lambda samples from N(mean, sigma^2 C), (lambda, n)."""
        return rng.multivariate_normal(self.mean, self.sigma ** 2 * self.C, size=self.lam)

    def tell(self, X: np.ndarray, losses) -> None:
        best = np.asarray(X)[np.argsort(losses)[:self.mu]]           # the mu best, best first
        y = (best - self.mean) / self.sigma                           # their steps, in sigma units
        step = self.w @ y                                             # weighted mean step
        self.mean = self.mean + self.sigma * step                     # the new mean
        vals, vecs = np.linalg.eigh(self.C)
        c_inv_sqrt = vecs @ np.diag(1 / np.sqrt(np.maximum(vals, 1e-20))) @ vecs.T
        self.ps = (1 - self.cs) * self.ps + np.sqrt(self.cs * (2 - self.cs) * self.mueff) * c_inv_sqrt @ step
        self.sigma *= np.exp(self.cs / self.ds * (np.linalg.norm(self.ps) / self.chi_n - 1))
        self.pc = (1 - self.cc) * self.pc + np.sqrt(self.cc * (2 - self.cc) * self.mueff) * step
        rank_mu = (self.w[:, None] * y).T @ y
        self.C = (1 - self.c1 - self.cmu) * self.C + self.c1 * np.outer(self.pc, self.pc) + self.cmu * rank_mu
