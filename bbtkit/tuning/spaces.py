"""Search spaces: what an optimizer's vectors mean to the API.

A space maps search vectors to what ``BlackBoxLM`` takes, ``candidates(X)``, and one vector to the
prompt it stands for, ``prompt(z)``. It also says what it asks the API: ``ask(api, X)`` for a
population (the training loss) and ``ask_point(api, z)`` for one vector (the dev score), so one dev
scorer serves every space. It is rebuilt from seeds (its projections), so a result stores z and the
seeds, never the prompt. The shallow and deep prompts are BBT's p = p0 + A z: p0 is what the
prompt is added to (the template's own tokens), so z = 0 is the manual prompt.
"""
from __future__ import annotations

import numpy as np
import torch

from .projection import Projection


class _AsksPrompts:
    """What a space of prompt vectors asks the API: the prompts themselves, one call per candidate."""

    def ask(self, api, X, **kw):
        """The API's output for a population of vectors X: their prompts, one call each."""
        return api(self.candidates(X), **kw)

    def ask_point(self, api, z, **kw):
        """The API's output for one vector z (a population of one)."""
        return api(self.prompt(z)[None], **kw)


class ShallowPrompt(_AsksPrompts):
    """BBT: one z (d,) -> a prompt (tokens, hidden) added to the word embeddings."""

    kind = "shallow"

    def __init__(self, projection: Projection, n_tokens: int, hidden: int):
        if projection.out_dim != n_tokens * hidden:
            raise ValueError(f"The projection gives {projection.out_dim} numbers; a prompt of {n_tokens} x {hidden} "
                             f"needs {n_tokens * hidden}.")
        self.projections, self.n, self.hidden = [projection], n_tokens, hidden
        self.layers = [0]

    @property
    def dim(self) -> int:
        return self.projections[0].d

    def candidates(self, X) -> torch.Tensor:
        """X (pop, d) -> prompts (pop, tokens, hidden)."""
        X = np.asarray(X)
        return self.projections[0](X).view(len(X), self.n, self.hidden)

    def prompt(self, z) -> torch.Tensor:
        """z (d,) -> (tokens, hidden)."""
        return self.projections[0](np.asarray(z).reshape(-1)).view(self.n, self.hidden)


class DeepPrompt(_AsksPrompts):
    """BBTv2: one z_l per prompted layer, Z (blocks, d) -> a deep prompt (num_layers, tokens, hidden).

    Layers without a block get a zero prompt (they stay as the manual prompt has them).
    """

    kind = "deep"

    def __init__(self, projections: list[Projection], layers: list[int], num_layers: int, n_tokens: int, hidden: int):
        if len(projections) != len(layers):
            raise ValueError(f"One projection per prompted layer: {len(projections)} for {len(layers)} layers.")
        self.projections, self.layers, self.num_layers = list(projections), list(layers), num_layers
        self.n, self.hidden = n_tokens, hidden

    @property
    def dim(self) -> int:
        return self.projections[0].d

    def candidates(self, Z) -> torch.Tensor:
        """Z (pop, blocks, d) -> deep prompts (pop, num_layers, tokens, hidden).

        A block that is the same for every candidate (all but the one being tuned) is projected once.
        """
        Z = np.asarray(Z)
        pop = len(Z)
        out = torch.zeros(pop, self.num_layers, self.n, self.hidden)
        for i, (layer, proj) in enumerate(zip(self.layers, self.projections)):
            block = Z[:, i]
            if not block.any():
                continue  # z = 0: a zero prompt
            if (block == block[0]).all():
                out[:, layer] = proj(block[:1]).view(1, self.n, self.hidden)
            else:
                out[:, layer] = proj(block).view(pop, self.n, self.hidden)
        return out

    def prompt(self, Z) -> torch.Tensor:
        """Z (blocks, d) -> (num_layers, tokens, hidden)."""
        return self.candidates(np.asarray(Z)[None])[0]


class LoRASpace:
    """DFO-LoRA: one z_l (d,) per adapted layer -> low-rank adapters on W_Q and W_K of that layer.

    z_l is split into equal parts, one per matrix (A_Q, B_Q, A_K, B_K with the default targets),
    each mapped by its own random projection to the matrix: A (r, in), B (out, r). Z (pop, blocks, d)
    -> an ``AdapterSet`` for the API. z = 0 gives zero adapters: the bare model.
    """

    kind = "lora"

    def __init__(self, projections: list[Projection], layers: list[int], rank: int, shapes: dict, num_layers: int,
                 hidden: int):
        self.targets = tuple(shapes)  # {target: (in, out)}
        per = 2 * len(self.targets)
        if len(projections) != per * len(layers):
            raise ValueError(f"LoRASpace needs {per} projections per layer ({per * len(layers)}), got {len(projections)}.")
        for j, proj in enumerate(projections):
            d_in, d_out = shapes[self.targets[(j % per) // 2]]
            if proj.out_dim != rank * (d_in if j % 2 == 0 else d_out):
                raise ValueError(f"Projection {j} gives {proj.out_dim} numbers, not a rank-{rank} matrix of "
                                 f"{'A' if j % 2 == 0 else 'B'}.")
        self.projections, self.layers, self.rank, self.shapes = list(projections), list(layers), rank, dict(shapes)
        self.num_layers, self.hidden, self.n = num_layers, hidden, 0

    @property
    def dim(self) -> int:
        return sum(p.d for p in self.projections[:2 * len(self.targets)])

    def candidates(self, Z):
        """Z (pop, blocks, d) -> AdapterSet with weights {layer: {target: (A (pop, r, in), B (pop, out, r))}}."""
        from ..api.blackbox import AdapterSet

        Z = np.asarray(Z, dtype=float)
        pop, per, weights = len(Z), 2 * len(self.targets), {}
        for i, layer in enumerate(self.layers):
            parts = np.split(Z[:, i], np.cumsum([p.d for p in self.projections[per * i:per * (i + 1) - 1]]), axis=1)
            mats = []
            for part, proj in zip(parts, self.projections[per * i:per * (i + 1)]):
                same = (part == part[:1]).all()
                mats.append((proj(part[:1]) if same else proj(part)).expand(pop, -1))
            weights[layer] = {t: (mats[2 * k].reshape(pop, self.rank, self.shapes[t][0]),
                                  mats[2 * k + 1].reshape(pop, self.shapes[t][1], self.rank))
                              for k, t in enumerate(self.targets)}
        return AdapterSet(weights)

    def adapters(self, Z):
        """Z (blocks, d) -> the AdapterSet of that one point."""
        return self.candidates(np.asarray(Z)[None])

    def prompt(self, Z) -> None:
        """No prompt: the template as it is, with the adapters applied."""
        return None

    def ask(self, api, Z, **kw):
        """The API's output for a population: one adapter set per candidate, one call each."""
        return api(adapters=self.candidates(Z), **kw)

    def ask_point(self, api, Z, **kw):
        """The API's output for one point: its adapter set."""
        return api(adapters=self.adapters(Z), **kw)


def relevance(P, Wq, bq, Wk, bk, features) -> torch.Tensor:
    """IPL's weights w (pop, examples, n) = sigmoid(mean_j q_i . k_j / sqrt(h)), q_i = W_q p_i + b_q,
    k_j = W_k e_j + b_k; the mean over the input's tokens j is taken first (it commutes with W_k), so
    features (examples, H) are the inputs' mean word embeddings. P (pop, n, H), W (pop, h, H), b (pop, h)."""
    q = torch.einsum("pnH,phH->pnh", P, Wq) + bq[:, None]
    k = torch.einsum("eH,phH->peh", features.to(P.dtype), Wk) + bk[:, None]
    return torch.sigmoid(torch.einsum("pnh,peh->pen", q, k) / Wq.shape[1] ** 0.5)


class WeightedPrompt:
    """An instance-aware prompt (IPL): P (n, H) whose token i is weighted for each input by
    ``relevance``. ``bk.evaluate(model, task, examples, res.prompt)`` builds each example's prompt
    w_i(x) p_i from the input's mean word embedding (``mean_embeddings``)."""

    def __init__(self, P, Wq, bq, Wk, bk):
        self.P, self.Wq, self.bq, self.Wk, self.bk = (torch.as_tensor(t, dtype=torch.float32) for t in (P, Wq, bq, Wk, bk))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.P.shape)

    def weights(self, features) -> torch.Tensor:
        """(examples, n) weights of the prompt tokens for inputs with these mean embeddings (examples, H)."""
        return relevance(self.P[None], self.Wq[None], self.bq[None], self.Wk[None], self.bk[None],
                         torch.as_tensor(features))[0]

    def prompts(self, features) -> torch.Tensor:
        """(examples, n, H): w_i(x) p_i for each input."""
        return self.weights(features)[..., None] * self.P

    def for_examples(self, model, examples) -> torch.Tensor:
        from ..api.published import mean_embeddings
        return self.prompts(mean_embeddings(model, examples))

    def flat(self) -> np.ndarray:
        """Every number, in the order ``from_flat`` reads them (P, W_q, b_q, W_k, b_k)."""
        return torch.cat([t.reshape(-1) for t in (self.P, self.Wq, self.bq, self.Wk, self.bk)]).numpy().astype(float)

    @classmethod
    def from_flat(cls, theta, n_tokens: int, hidden: int, head_size: int) -> "WeightedPrompt":
        sizes = [n_tokens * hidden, head_size * hidden, head_size, head_size * hidden, head_size]
        theta = torch.as_tensor(np.asarray(theta, dtype=np.float32).reshape(-1))
        if len(theta) != sum(sizes):
            raise ValueError(f"An instance-aware prompt of {n_tokens} x {hidden} with head size {head_size} has "
                             f"{sum(sizes)} numbers, got {len(theta)}.")
        P, Wq, bq, Wk, bk = torch.split(theta, sizes)
        return cls(P.view(n_tokens, hidden), Wq.view(head_size, hidden), bq, Wk.view(head_size, hidden), bk)


class InstancePrompt:
    """Black-box IPL: z = (z_P, z_Q, z_K) -> P = A_P z_P (n, H), W_q = A_Q z_Q and W_k = A_K z_K (h, H).

    Per candidate and example, the prompt w_i(x) P_i is added to the template tokens, as BBT adds A z,
    so z = 0 is the manual prompt. The key bias is fixed at -W_k mu (mu: the training inputs' mean
    embedding), which centres the scores; the paper learns it. candidates(X, features) -> (pop, examples, n, H).
    """

    kind = "instance"

    def __init__(self, projections: list[Projection], n_tokens: int, hidden: int, head_size: int, center):
        if len(projections) != 3:
            raise ValueError("An instance-aware prompt space has three projections: P, W_q and W_k.")
        sizes = [n_tokens * hidden, head_size * hidden, head_size * hidden]
        for proj, size, name in zip(projections, sizes, ("P", "W_q", "W_k")):
            if proj.out_dim != size:
                raise ValueError(f"The projection of {name} gives {proj.out_dim} numbers; it needs {size}.")
        self.projections, self.n, self.hidden, self.head = list(projections), n_tokens, hidden, head_size
        self.center = torch.as_tensor(np.asarray(center, dtype=np.float32))
        self.layers = [0]

    @property
    def dim(self) -> int:
        return sum(p.d for p in self.projections)

    def parts(self, X):
        """X (pop, dim) -> P (pop, n, H), W_q, b_q, W_k, b_k."""
        X = np.asarray(X, dtype=float).reshape(-1, self.dim)
        zP, zQ, zK = np.split(X, np.cumsum([p.d for p in self.projections[:2]]), axis=1)
        pop, H, h = len(X), self.hidden, self.head
        P = self.projections[0](zP).view(pop, self.n, H)
        Wq, Wk = self.projections[1](zQ).view(pop, h, H), self.projections[2](zK).view(pop, h, H)
        return P, Wq, torch.zeros(pop, h), Wk, -(Wk @ self.center)

    def candidates(self, X, features) -> torch.Tensor:
        P, Wq, bq, Wk, bk = self.parts(X)
        return relevance(P, Wq, bq, Wk, bk, features)[..., None] * P[:, None]

    def prompt(self, z) -> WeightedPrompt:
        return WeightedPrompt(*(t[0] for t in self.parts(np.asarray(z)[None])))

    def ask(self, api, X, **kw):
        """The API's output for a population: each candidate's prompt for each of the API's inputs, built from
        their mean word embeddings (``api.input_embeddings()``, an embeddings endpoint's answer, no call)."""
        return api(self.candidates(X, api.input_embeddings()), per_example=True, **kw)

    def ask_point(self, api, z, **kw):
        """The API's output for one vector z (a population of one)."""
        return self.ask(api, np.asarray(z)[None], **kw)
