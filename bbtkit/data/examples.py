"""Examples: one labelled text (or text pair), and an immutable named list of them with sampling helpers."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None  # second sentence of a pair task, None for single-sentence tasks
    label: int  # index into task_labels(task); -1: unlabelled

    def __post_init__(self) -> None:
        for name in ("text_a", "text_b"):
            value = getattr(self, name)
            if value is None and name == "text_b":
                continue
            if not isinstance(value, str):
                raise ValueError(f"field {name!r} must be a string{' or null' if name == 'text_b' else ''}, "
                                 f"got {type(value).__name__} {_short(value)}.")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ValueError(f"field {name!r} holds {value[e.start]!r} at character {e.start}, a lone surrogate "
                                 "that is not valid Unicode; clean the text first, e.g. "
                                 "text.encode('utf-8', 'replace').decode('utf-8').") from None
        if isinstance(self.label, (bool, np.bool_)) or not isinstance(self.label, (int, np.integer)):
            raise ValueError(f"field 'label' must be an integer class index, got {type(self.label).__name__} "
                             f"{_short(self.label)}.")
        object.__setattr__(self, "label", int(self.label))


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class Examples(Sequence[Example]):
    """An immutable, named list of :class:`Example` with sampling helpers."""

    def __init__(self, examples: Iterable[Example], name: str = "examples") -> None:
        self._items: tuple[Example, ...] = tuple(examples)
        self.name = name
        labels = np.fromiter((e.label for e in self._items), dtype=np.int64, count=len(self._items))
        labels.flags.writeable = False
        self._labels = labels

    @property
    def labels(self) -> np.ndarray:
        """Labels, (n,) int64, read-only."""
        return self._labels

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> Example: ...
    @overload
    def __getitem__(self, i: slice) -> Examples: ...
    def __getitem__(self, i: int | slice) -> Example | Examples:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return Examples(self._items[i], f"{self.name}[{start}:{stop}{'' if step == 1 else f':{step}'}]")
        return self._items[i]

    def __iter__(self) -> Iterator[Example]:
        return iter(self._items)

    def __repr__(self) -> str:
        counts = np.bincount(self._labels[self._labels >= 0]).tolist()
        return f"Examples({self.name!r}, n={len(self)}, per_label={counts})"

    def per_label(self, num_labels: int) -> list[int]:
        """Number of examples of each label 0..num_labels-1."""
        if len(self) and (self._labels.min() < 0 or self._labels.max() >= num_labels):
            raise ValueError(f"{self.name}: labels span {self._labels.min()}..{self._labels.max()}, "
                             f"outside 0..{num_labels - 1}; pass the task's number of labels.")
        return np.bincount(self._labels, minlength=num_labels).tolist()

    def subset(self, n: int, seed: int = 0) -> Examples:
        """A deterministic random sample of n examples (no replacement), in their original order."""
        if n <= 0:
            raise ValueError(f"subset size must be positive, got n={n}.")
        if n >= len(self):
            return self
        idx = np.sort(np.random.RandomState(seed).choice(len(self), size=n, replace=False))
        return Examples((self._items[i] for i in idx), f"{self.name} (subset {n}, seed {seed})")

    def sample_per_class(self, k: int, seed: int = 0) -> Examples:
        """k random examples of each label present, deterministic, in their original order."""
        if k <= 0:
            raise ValueError(f"k must be positive, got k={k}.")
        rng = np.random.RandomState(seed)
        picked = []
        for label in np.unique(self._labels):
            where = np.flatnonzero(self._labels == label)
            if len(where) < k:
                raise ValueError(f"{self.name}: label {label} has only {len(where)} examples, "
                                 f"fewer than k={k}; lower k.")
            picked.append(rng.choice(where, size=k, replace=False))
        idx = np.sort(np.concatenate(picked)) if picked else []
        return Examples((self._items[i] for i in idx), f"{self.name} ({k} per class, seed {seed})")
