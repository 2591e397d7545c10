"""``AdapterSet``: adapters as candidates (DFO-LoRA), low-rank updates of the query and key projections,
one set per candidate, checked once when built; the service applies them for a call and changes no weight."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import guards


@dataclass(frozen=True)
class AdapterSet:
    """Adapters as candidates (DFO-LoRA): low-rank updates W + scale * B A of the query and key
    projections, one set per candidate. weights: {layer: {"q" | "k": (A (pop, r, hidden), B (pop, out, r))}}
    (tensors or numpy arrays); scale: a finite number. The service applies them for the call and changes no weight."""

    weights: dict
    scale: float = 1.0
    checked: bool = field(default=False, repr=False, compare=False)  # set by take/below: skip re-checking

    def __post_init__(self) -> None:
        if self.checked:
            return  # a part of a set that was checked whole
        weights, scale = guards.adapter_weights(self.weights, self.scale)  # a sentence for each way it can be wrong
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "scale", scale)

    @property
    def pop(self) -> int:
        A, _ = next(iter(next(iter(self.weights.values())).values()))
        return A.shape[0]

    def take(self, start: int, stop: int) -> "AdapterSet":
        """Candidates start..stop-1."""
        return AdapterSet({l: {t: (A[start:stop], B[start:stop]) for t, (A, B) in per.items()}
                           for l, per in self.weights.items()}, self.scale, checked=True)

    def below(self, layer: int) -> "AdapterSet | None":
        """The first candidate's adapters on layers below ``layer`` (None when there are none)."""
        low = {l: {t: (A[:1].clone(), B[:1].clone()) for t, (A, B) in per.items()}
               for l, per in self.weights.items() if l < layer}
        return AdapterSet(low, self.scale, checked=True) if low else None

    def lowest_difference(self) -> int | None:
        """The lowest layer where the candidates' adapters differ (None: they are all the same)."""
        for l in sorted(self.weights):
            if any(not torch.equal(T, T[:1].expand_as(T)) for A, B in self.weights[l].values() for T in (A, B)):
                return l
        return None

    def agrees_below(self, ref: "AdapterSet | None", layer: int) -> bool:
        """Every candidate's adapters below ``layer`` are ``ref``'s (one candidate)."""
        low = {l for l in self.weights if l < layer}  # no copy: only compared
        if not low or ref is None:
            return not low and ref is None
        if self.scale != ref.scale or low != set(ref.weights):
            return False
        return all(set(self.weights[l]) == set(ref.weights[l]) and all(
            torch.equal(T, R.expand_as(T)) for t in ref.weights[l]
            for T, R in zip(self.weights[l][t], ref.weights[l][t])) for l in ref.weights)
