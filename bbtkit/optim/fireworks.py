"""The Fireworks Algorithm (Tan & Zhu, 2010) behind the ask/tell seam: DFO-LoRA's second optimizer.

Each generation, every firework explodes into sparks around itself. A good firework (low loss)
throws *many sparks close by*; a poor one throws *few sparks far away*: local search where it pays,
exploration elsewhere. For n fireworks with losses y_i (y_min, y_max their best and worst),

    sparks      s_i = m (y_max - y_i + xi) / sum_j (y_max - y_j + xi),  clipped to [round(a m), round(b m)]
    amplitude   A_i = A_hat (y_i - y_min + xi) / sum_j (y_j - y_min + xi)

An explosion spark moves a random subset of coordinates (each chosen with probability 1/2, at
least one) of its firework by one shared offset h ~ U(-A_i, A_i). Then m_hat *Gaussian sparks*
scale a random subset of one random firework's coordinates by g ~ N(1, 1). A coordinate that leaves
[lo, hi] comes back by the paper's mapping lo + |x| mod (hi - lo). Selection keeps the best of all
locations (fireworks and sparks), and n - 1 others drawn with probability proportional to their
summed distance to all the others, which keeps the fireworks spread out.

The paper's settings are n = 5, m = 50, a = 0.04, b = 0.8, A_hat = 40, m_hat = 5 on [-100, 100]^d.
Where ours differ: the first firework starts at ``x0`` (the manual prompt, as for CMA-ES), the others
uniformly in the bounds; the paper draws all n uniformly. The paper picks ``round(d * U(0, 1))``
coordinates per spark; we flip a fair coin per coordinate, which has the same mean and never moves 0.
"""
from __future__ import annotations

import numpy as np

PAPER = dict(fireworks=5, sparks=50, a=0.04, b=0.8, amplitude=40.0, gaussian=5)


class Fireworks:
    """The Fireworks Algorithm on [-bound, bound]^dim, minimising. Deterministic for a seed and the
    losses it is told, so that the loop's checkpoint/resume replays it exactly. ``min_amplitude``
    (0: the paper) floors every amplitude: in the original the best firework's amplitude is almost 0,
    so its sparks land on itself; EFWA (Zheng, Janecek & Tan, 2013) added the floor.

    The first ``ask`` returns the n initial fireworks; each later one the next generation's sparks,
    whose number (``popsize``) follows from the fireworks' losses.
    """

    def __init__(self, dim: int, bound: float = 5.0, fireworks: int = 5, sparks: int = 50, a: float = 0.04,
                 b: float = 0.8, amplitude: float | None = None, gaussian: int = 5, seed: int = 0, x0=None,
                 min_amplitude: float = 0.0):
        if dim < 1 or fireworks < 1 or sparks < 1 or gaussian < 0 or not bound > 0:
            raise ValueError("Fireworks needs dim, fireworks and sparks >= 1, gaussian >= 0 and a positive bound; "
                             f"got dim={dim}, fireworks={fireworks}, sparks={sparks}, gaussian={gaussian}, "
                             f"bound={bound}.")
        if not 0 < a < b < 1:
            raise ValueError(f"Fireworks needs 0 < a < b < 1 (spark-count limits as fractions of m), got a={a}, b={b}.")
        self.dim, self.lo, self.hi = dim, -float(bound), float(bound)
        self.n, self.m, self.a, self.b, self.m_hat = fireworks, sparks, a, b, gaussian
        self.amplitude = 0.4 * (self.hi - self.lo) if amplitude is None else float(amplitude)  # paper: 40 on 200
        self.min_amplitude = float(min_amplitude)  # 0: the paper; > 0: EFWA's floor (Zheng et al., 2013)
        self.rng = np.random.default_rng(seed)
        start = np.zeros(dim) if x0 is None else np.clip(np.asarray(x0, dtype=float), self.lo, self.hi)
        self.start = start.copy()
        self.X = np.vstack([start, self.rng.uniform(self.lo, self.hi, (fireworks - 1, dim))])  # (n, dim)
        self.y: np.ndarray | None = None   # the fireworks' losses, once told
        self.plan = np.zeros(fireworks, dtype=int)
        self.generation = 0
        self.selected: np.ndarray | None = None

    # --- the two formulas --------------------------------------------------------------------
    def spark_counts(self, y: np.ndarray) -> np.ndarray:
        """s_i: many sparks for good fireworks, bounded to [round(a m), round(b m)]."""
        w = y.max() - y + np.finfo(float).eps
        s = self.m * w / w.sum()
        return np.clip(np.round(s), round(self.a * self.m), round(self.b * self.m)).astype(int)

    def amplitudes(self, y: np.ndarray) -> np.ndarray:
        """A_i: small for good fireworks (local search), large for poor ones."""
        w = y - y.min() + np.finfo(float).eps
        return np.maximum(self.amplitude * w / w.sum(), self.min_amplitude)

    # --- ask / tell ------------------------------------------------------------------------------
    @property
    def popsize(self) -> int:
        return self.n if self.y is None else int(self.plan.sum()) + self.m_hat

    def ask(self) -> np.ndarray:
        if self.y is None:
            return self.X.copy()                                             # the fireworks themselves
        amps, out = self.amplitudes(self.y), []
        for i, count in enumerate(self.plan):
            for _ in range(count):
                out.append(self._move(self.X[i], lambda x, k, a=amps[i]: x + a * self.rng.uniform(-1, 1)))
        for _ in range(self.m_hat):
            i = self.rng.integers(self.n)
            out.append(self._move(self.X[i], lambda x, k: x * self.rng.normal(1.0, 1.0)))
        return np.array(out)                                                  # (popsize, dim)

    def _move(self, x: np.ndarray, how) -> np.ndarray:
        """A spark: the chosen coordinates (a fair coin each, at least one) moved by ``how``, one
        draw shared by all of them, as in the paper; out-of-range coordinates mapped back."""
        chosen = self.rng.random(self.dim) < 0.5
        if not chosen.any():
            chosen[self.rng.integers(self.dim)] = True
        new = x.copy()
        new[chosen] = how(x[chosen], chosen)
        out = (new < self.lo) | (new > self.hi)
        new[out] = self.lo + np.abs(new[out]) % (self.hi - self.lo)
        return new

    def tell(self, X, losses) -> None:
        X, losses = np.asarray(X, dtype=float), np.asarray(losses, dtype=float)
        if self.y is None:  # the initial fireworks
            pool, y = X, losses
        else:
            pool, y = np.vstack([self.X, X]), np.concatenate([self.y, losses])
        self.X, self.y = self._select(pool, y)
        self.plan = self.spark_counts(self.y)
        self.selected = self.X[0].copy()
        self.generation += 1

    def _select(self, pool: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The best location, then n - 1 others with probability proportional to their summed distance."""
        best = int(np.argmin(y))
        rest = np.delete(np.arange(len(pool)), best)
        if len(rest) <= self.n - 1:
            keep = rest
        else:
            dist = np.sqrt(((pool[rest, None] - pool[None]) ** 2).sum(-1)).sum(1)   # R(x) = sum_j ||x - x_j||
            p = dist / dist.sum() if dist.sum() > 0 else None
            keep = self.rng.choice(rest, size=self.n - 1, replace=False, p=p)
        idx = np.concatenate([[best], keep]).astype(int)
        return pool[idx].copy(), y[idx].copy()

    def stop(self) -> dict:
        return {}

    def info(self) -> dict:
        amp = None if self.y is None else float(self.amplitudes(self.y).max())
        return {"fireworks_best": None if self.y is None else float(self.y[0]), "max_amplitude": amp}

    def final(self) -> np.ndarray:
        return self.X[0].copy()


def record(f, dim: int = 2, generations: int = 6, **kw) -> list[dict]:
    """Run the algorithm on f and keep, per generation: the fireworks and their amplitudes, the
    explosion sparks with the firework each came from, and the Gaussian sparks (for pictures)."""
    fw = Fireworks(dim, **kw)
    X = fw.ask()
    fw.tell(X, [f(x) for x in X])
    frames = []
    for _ in range(generations):
        fireworks, amps, plan = fw.X.copy(), fw.amplitudes(fw.y), fw.plan.copy()
        X = fw.ask()
        n = int(plan.sum())
        frames.append({"fireworks": fireworks, "amplitudes": amps, "sparks": X[:n], "parent": np.repeat(np.arange(len(plan)), plan),
                       "gaussian": X[n:], "best": float(fw.y[0])})
        fw.tell(X, [f(x) for x in X])
    return frames
