"""Named tensors moved in place along seeded directions, and a copy that gives them back bit for bit.

``TensorParams`` is what MeZO's optimizer moves (``bbtkit.optim.zo``'s params seam): a direction is a list of
(seed, weight) pairs, and its noise is drawn again from the seeds, one tensor at a time, never stored.
Moving back along the same direction undoes a move only up to floating-point rounding (each add rounds
to half an ulp), and the rounding adds up over a run: after 20 forward passes on a tiny llama every
weight was off by up to 5e-7, and an absurd step (lr = eps = 1e30) left them off by 1e23. So a run that
promises to give the model back keeps a copy: ``kept(tensors)`` snapshots the tensors on entry and
writes the copy back on exit, whatever ended the block (a normal end, an exception, Ctrl-C).

The copy's cost: one more copy of the tuned tensors, in host memory (on a GPU, where the perturbations
live, it takes no device memory; on a CPU it is a second copy of them in the same RAM), and two copies
of them in time (one on entry, one on exit), small beside a single forward pass.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch


class TensorParams:
    """Named tensors moved in place along seeded directions (see ``zo``): for tensor k, the noise of
    seed s is the k-th draw of a generator seeded s, as in MeZO's code. Updates are logged, so that
    they can be undone (up to rounding), saved and applied again."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.tensors, self.log = dict(tensors), []
        self.applied = 0  # how many logged updates the tensors hold now (rewind moves it back)

    def _add(self, direction, scale: float, decay: float = 0.0) -> None:
        """theta <- (1 - decay) theta + scale * v (decay spares biases and norms, as MeZO)."""
        device = next(iter(self.tensors.values())).device
        gens = [(torch.Generator(device=device).manual_seed(int(s)), w) for s, w in direction]
        for name, p in self.tensors.items():
            z = None
            for g, w in gens:
                r = torch.randn(p.shape, generator=g, device=p.device, dtype=p.dtype)
                z = r.mul_(w) if z is None else z.add_(r, alpha=w)
            if decay and not ("bias" in name or "norm" in name.lower()):
                p.mul_(1.0 - decay)
            p.add_(z, alpha=scale)
            del z

    def candidates(self, perturbations) -> list:
        return list(perturbations)  # evaluated in place, one at a time, by ``losses``

    def losses(self, perturbations, loss) -> np.ndarray:
        """loss() at each perturbed point; consecutive points along one direction move by the difference
        (MeZO's +eps, -2 eps, +eps); the tensors are moved back (up to rounding) before returning."""
        out, held = [], None
        try:
            for d, scale in perturbations:
                if held is not None and held[0] == d:
                    self._add(d, scale - held[1])
                else:
                    if held is not None:
                        self._add(held[0], -held[1])
                    self._add(d, scale)
                held = (d, scale)
                out.append(loss())
        finally:
            if held is not None:
                self._add(held[0], -held[1])
        return np.array(out)

    def update(self, direction, coef: float, decay: float = 0.0) -> None:
        self._add(direction, -coef, decay)
        self.log.append({"direction": [list(p) for p in direction], "coef": coef, "decay": decay})
        self.applied = len(self.log)

    def rewind(self, k: int) -> None:
        """Undo the applied updates after the first k, newest first (up to rounding)."""
        for entry in reversed(self.log[k:self.applied]):
            self.undo(entry)
        self.applied = min(k, self.applied)

    def redo(self, entry: dict) -> None:
        """Apply one logged update again (to the tensors it was logged from, at their start)."""
        self._add(tuple(tuple(p) for p in entry["direction"]), -entry["coef"], entry["decay"])

    def undo(self, entry: dict) -> None:
        """The inverse of one logged update: theta <- (theta + coef v) / (1 - decay)."""
        d = tuple(tuple(p) for p in entry["direction"])
        self._add(d, entry["coef"])
        if entry["decay"]:
            for name, p in self.tensors.items():
                if not ("bias" in name or "norm" in name.lower()):
                    p.div_(1.0 - entry["decay"])

    def current(self) -> np.ndarray:
        return np.array([float(len(self.log))])  # the weights are the start plus the logged steps


def snapshot_bytes(tensors: dict[str, torch.Tensor]) -> int:
    """What ``kept(tensors)`` holds: the tensors' size in bytes."""
    return int(sum(t.numel() * t.element_size() for t in tensors.values()))


@contextmanager
def kept(tensors: dict[str, torch.Tensor], where: str | torch.device = "cpu"):
    """The tensors as they were on entry, bit for bit, whatever ends the block: a copy is taken on entry
    (in host memory by default) and written back into the same tensors on exit. Yields the copy."""
    copy = {n: t.detach().to(where, copy=True) for n, t in tensors.items()}
    try:
        yield copy
    finally:
        copy_into(tensors, copy)


def copy_into(tensors: dict[str, torch.Tensor], values: dict[str, torch.Tensor]) -> None:
    """Write values[n] into tensors[n], in place, for every name."""
    with torch.no_grad():
        for n, t in tensors.items():
            t.copy_(values[n])


__all__ = ["TensorParams", "copy_into", "kept", "snapshot_bytes"]
