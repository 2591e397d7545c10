"""Search spaces: what an optimizer's vectors mean to the API.

A space maps search vectors to what ``BlackBoxLM`` takes, ``candidates(X)``, and one vector to the
prompt it stands for, ``prompt(z)``. It is rebuilt from seeds (its projections), so a result stores
z and the seeds, never the prompt. Both spaces here are BBT's p = p0 + A z: p0 is what the prompt
is added to (the template's own tokens), so z = 0 is the manual prompt.
"""
from __future__ import annotations

import numpy as np
import torch

from .projection import Projection


class ShallowPrompt:
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


class DeepPrompt:
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
