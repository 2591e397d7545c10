"""Zeroth-order SGD: a gradient estimated from two losses, and the prior-guided directions of MeZO-GV.

SPSA in three lines. For a random direction u ~ N(0, I) and a small eps,

    g_hat = (L(x + eps u) - L(x - eps u)) / (2 eps) * u        E[g_hat] -> grad L(x) as eps -> 0

because E[u u^T] = I. One step costs two loss evaluations (two API calls), whatever the dimension.

Directions are never stored: a direction is a short list of (seed, weight) pairs, and the vector is
the weighted sum of Gaussian vectors regenerated from those seeds (MeZO's trick). So the same
optimizer drives BBT's z (``VectorParams``, a NumPy vector) and a model's own weights
(``bbtkit.whitebox.mezo.TensorParams``, perturbed in place one tensor at a time).

Three ways to pick the direction (``ZO(method=...)``):

* ``"zo-sgd"``: u from one fresh seed; 2 calls a step (MeZO).
* ``"zo-gv"``: prior-guided (Jin, Cen & Tan, arXiv 2601.04710). The paper's form (``form="paper"``):
  score M samples L(x + eps z_i), split them into the best floor(alpha M) and the rest, and step along
  v = mean(best z) - mean(rest z); M + 2 calls a step. The released code's form (``form="code"``):
  M = 2 and v = z_best - z_worst, where one sample is new and the other is the best seed so far,
  scored again at the current point (two new seeds on the first step); 4 calls a step.
* ``"zo-greedy"``: score M samples and step along the single best one; M + 2 calls a step.

Every loss evaluation is one API call. The optimizers are deterministic given their seed and the
losses they are told, so ``loop.tune`` can checkpoint and resume them by replay. ``bbtkit.methods.zo_sgd`` runs
them on BBT's z through the API (``run_zo``); ``bbtkit.whitebox.mezo`` on a model's own weights.
"""
from __future__ import annotations

import math

import numpy as np

Direction = tuple  # ((seed, weight), ...): the vector sum(weight * N(0, I) drawn from seed)
OPTIMIZERS = ("zo-sgd", "zo-gv", "zo-greedy")
FORMS = ("paper", "code")


class VectorParams:
    """A point x in R^dim (BBT's z), perturbed and moved along seeded directions.

    momentum: heavy-ball momentum on the steps (0 = plain ZO-SGD); weight decay comes with each step.
    """

    def __init__(self, dim: int, x0=None, momentum: float = 0.0):
        self.x = np.zeros(dim) if x0 is None else np.array(x0, dtype=float)
        self.dim, self.momentum = int(dim), float(momentum)
        self.velocity = np.zeros(dim)

    def noise(self, seed: int) -> np.ndarray:
        return np.random.default_rng(int(seed)).standard_normal(self.dim)

    def vector(self, direction: Direction) -> np.ndarray:
        return sum(w * self.noise(s) for s, w in direction)

    def candidates(self, perturbations) -> np.ndarray:
        """[(direction, scale), ...] -> the points x + scale * v, (pop, dim): what the API scores."""
        return np.stack([self.x + scale * self.vector(d) for d, scale in perturbations])

    def update(self, direction: Direction, coef: float, decay: float = 0.0) -> None:
        """x <- x - (coef * v + decay * x), through momentum when it is on."""
        step = coef * self.vector(direction) + decay * self.x
        self.velocity = self.momentum * self.velocity + step
        self.x = self.x - self.velocity

    def current(self) -> np.ndarray:
        return self.x.copy()


class ZO:
    """Zeroth-order SGD behind the ask/tell seam. A step is one or two generations: the samples that
    pick a direction (prior-guided and greedy only), then the two-point estimate along it."""

    def __init__(self, params, method: str = "zo-sgd", *, eps: float = 0.1, lr: float = 0.01, samples: int = 8,
                 top: float = 0.5, form: str = "paper", weight_decay: float = 0.0, seed: int = 0):
        if method not in OPTIMIZERS:
            raise ValueError(f"ZO method must be one of {OPTIMIZERS}, not {method!r}.")
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, not {form!r}.")
        if form == "code" and method != "zo-gv":
            raise ValueError("form='code' is the released code of prior-guided ZO: use it with method='zo-gv'.")
        if eps <= 0 or lr < 0:
            raise ValueError("eps must be positive and lr non-negative.")
        if method != "zo-sgd" and form == "paper" and (samples < 2 or not 0 < top < 1 or int(top * samples) < 1):
            raise ValueError(f"Prior-guided and greedy ZO need samples >= 2 and 0 < top < 1 with floor(top * samples)"
                             f" >= 1; got samples={samples}, top={top}.")
        self.params, self.method, self.form = params, method, form
        self.eps, self.lr, self.samples, self.top, self.weight_decay = float(eps), float(lr), int(samples), float(top), float(weight_decay)
        self.rng = np.random.default_rng(seed)
        self.sampling = method != "zo-sgd"   # the next generation scores samples (else the two points)
        self.direction: Direction | None = None
        self.pending: list[int] = []         # seeds of the samples being scored
        self.best_seed: int | None = None    # the code form's best seed so far
        self.steps, self.projected_grad = 0, None
        self.start = np.asarray(params.current(), dtype=float)
        self.selected = self.start.copy()

    def _seed(self) -> int:
        return int(self.rng.integers(2**31 - 1))

    @property
    def popsize(self) -> int:
        """The size of the next generation (the loop checks it against the budget before asking)."""
        if not self.sampling:
            return 2
        return 2 if self.form == "code" else self.samples

    @property
    def calls_per_step(self) -> int:
        return 2 if self.method == "zo-sgd" else (4 if self.form == "code" else self.samples + 2)

    def ask(self):
        if self.sampling:
            if self.form == "code":
                self.pending = [self._seed()] + ([self.best_seed] if self.best_seed is not None else [self._seed()])
            else:
                self.pending = [self._seed() for _ in range(self.samples)]
            return self.params.candidates([(((s, 1.0),), self.eps) for s in self.pending])
        if self.method == "zo-sgd":
            self.direction = ((self._seed(), 1.0),)
        return self.params.candidates([(self.direction, self.eps), (self.direction, -self.eps)])

    def tell(self, X, losses) -> None:
        losses = np.asarray(losses, dtype=float)
        if self.sampling:
            self.direction = self.guide(self.pending, losses)
            self.sampling = False
            return
        self.projected_grad = float((losses[0] - losses[1]) / (2 * self.eps))
        self.params.update(self.direction, self.lr * self.projected_grad, self.lr * self.weight_decay)
        self.steps += 1
        self.sampling = self.method != "zo-sgd"
        self.selected = np.asarray(self.params.current(), dtype=float)

    def guide(self, seeds: list[int], losses: np.ndarray) -> Direction:
        """The direction that the scored samples point to (lower loss is better)."""
        order = np.argsort(losses, kind="stable")
        if self.method == "zo-greedy":
            return ((seeds[order[0]], 1.0),)
        if self.form == "code":
            self.best_seed = seeds[order[0]]
            return ((seeds[order[0]], 1.0), (seeds[order[-1]], -1.0))
        k = int(math.floor(self.top * len(seeds)))
        best, rest = order[:k], order[k:]
        return tuple((seeds[i], 1.0 / k) for i in best) + tuple((seeds[i], -1.0 / len(rest)) for i in rest)

    def estimate(self) -> np.ndarray:
        """The last step's gradient estimate, projected_grad * v (vector parameters only)."""
        if self.projected_grad is None:
            raise ValueError("No step has been taken yet.")
        return self.projected_grad * self.params.vector(self.direction)

    def stop(self) -> dict:
        return {}

    def start_info(self) -> dict:
        return {"step": 0, "lr": self.lr, "eps": self.eps}

    def info(self) -> dict:
        return {"step": self.steps, "phase": "sample" if self.sampling else "step",
                "projected_grad": self.projected_grad}

    def summary(self) -> dict:
        return {"steps": self.steps, "calls per step": self.calls_per_step}

    def final(self) -> np.ndarray:
        return np.asarray(self.params.current(), dtype=float)


def gradient_alignment(f, grad: np.ndarray, x, method: str, *, draws: int = 50, seed: int = 0, **zo) -> np.ndarray:
    """cos(g_hat, grad) of ``draws`` independent estimates at x, for one estimator.

    f(X) -> losses of the points X (pop, dim); grad: the true gradient at x (autograd's). Each draw is
    one step of a fresh ``ZO`` (its own seed) with lr = 0, so x never moves."""
    out = []
    for k in range(draws):
        opt = ZO(VectorParams(len(x), x), method, lr=0.0, seed=seed * 100_003 + k, **zo)
        while opt.projected_grad is None:
            X = opt.ask()
            opt.tell(X, f(X))
        g = opt.estimate()
        out.append(float(g @ grad / (np.linalg.norm(g) * np.linalg.norm(grad) + 1e-30)))
    return np.array(out)
