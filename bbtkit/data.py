"""Few-shot text-classification data: one JSONL format, splits, and the BBT sampler.

Every file holds one example a line: ``{"text_a": str, "text_b": str | null, "label": int}``.
A data directory looks like ``<dir>/<task>/{test.jsonl, train.jsonl?, fewshot/16-SEED/{train,dev}.jsonl}``
plus, optionally, ``<dir>/index.json`` (label names, row counts) or ``<dir>/<task>/labels.json``.
"""
from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from .tasks import TASKS as _REGISTRY

ENV_VAR = "BBTKIT_DATA"
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the folder holding the bbtkit package
TASKS = tuple(_REGISTRY)  # the benchmark tasks' names, from the one task registry (tasks.TASKS)
SAMPLERS = ("fewshot", "bbt")

# Built-in label names (the same as index.json), from the task registry; used when no data directory says otherwise.
TASK_LABELS: dict[str, list[str]] = {name: list(t.class_names) for name, t in _REGISTRY.items()}

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


@dataclass
class Split:
    task: str
    seed: int  # the few-shot seed that chose train and dev
    train: Examples
    dev: Examples
    test: Examples


def check_task(task: str) -> str:
    """Return task if it is a benchmark task's folder name, else raise ValueError with a suggestion."""
    if task in TASKS:
        return task
    close = difflib.get_close_matches(str(task).lower(), TASKS, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown task {task!r}.{hint} Known tasks: {', '.join(TASKS)}.")


def check_seed(seed) -> int:
    """seed as an int; anything else (a string, a float, a bool) is a ValueError. Seeds name folders
    (``fewshot/16-SEED``, leaderboard cells), so only integers may become paths."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__} {_short(seed)}.")
    return int(seed)


def _candidates() -> list[Path]:
    """Places searched for data after $BBTKIT_DATA, in order."""
    return [Path.cwd() / "data", PROJECT_ROOT / "data",
            Path.cwd().parent / "shared" / "data", PROJECT_ROOT.parent / "shared" / "data"]


def _has_data(d: Path, task: str | None) -> bool:
    if task is not None:
        return (d / task).is_dir()
    return d.is_dir() and ((d / "index.json").is_file() or any((d / t).is_dir() for t in TASKS))


def data_dir(task: str | None = None) -> Path:
    """The data directory: $BBTKIT_DATA if set, else the first of ./data, <project>/data,
    ../shared/data, <project>/../shared/data that holds `task/` (or any data, if task is None)."""
    if task is not None:
        check_task(task)
    what = f"a '{task}/' folder" if task else "index.json or a task folder"
    env = os.environ.get(ENV_VAR)
    if env:
        d = Path(env).expanduser()
        if _has_data(d, task):
            return d
        raise FileNotFoundError(f"{ENV_VAR}={env} has no {what}. Point {ENV_VAR} at a data "
                                f"directory that has one, or unset it to search the default places.")
    searched = []
    for d in _candidates():
        if _has_data(d, task):
            return d
        searched.append(str(d))
    raise FileNotFoundError(
        f"No data directory with {what} found. Searched ${ENV_VAR} (unset), "
        + ", ".join(searched) + ". Set " + ENV_VAR + " to a data directory, or run "
        f"bbtkit.download.download_task({(task or 'task')!r}) (needs internet and `pip install datasets`) "
        "to fill ./data.")


def task_labels(task: str) -> list[str]:
    """Label names of task: from <dir>/<task>/labels.json, else <dir>/index.json, else built in."""
    check_task(task)
    try:
        d = data_dir(task)
    except FileNotFoundError:
        return list(TASK_LABELS[task])
    if (d / task / "labels.json").is_file():
        return _labels(_read_json(d / task / "labels.json"), d / task / "labels.json")
    if (d / "index.json").is_file():
        index = _read_json(d / "index.json")
        entry = index.get("tasks", {}).get(task) if isinstance(index, dict) and isinstance(index.get("tasks"), dict) else None
        if entry is not None:
            return _labels(entry.get("labels") if isinstance(entry, dict) else None, d / "index.json")
    return list(TASK_LABELS[task])


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"{path} is not valid UTF-8 JSON ({e}); fix or delete it.") from None


def _labels(labels, path: Path) -> list[str]:
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"{path}: the task's labels must be a list of at least two strings, got {_short(labels)}; "
                         "fix or delete the file.")
    return list(labels)


@functools.lru_cache(maxsize=16)
def _read_jsonl(path: str, mtime_ns: int, size: int) -> tuple[Example, ...]:
    # mtime and size are part of the cache key, so an edited file is read again.
    items = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{where}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start}); "
                                 "save the file as UTF-8.") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{where}: not valid JSON ({e}); {_FORMAT}") from None
            if not isinstance(row, dict) or "text_a" not in row or "label" not in row:
                raise ValueError(f"{where}: not an example ({_short(row)}); {_FORMAT}")
            try:
                items.append(Example(row["text_a"], row.get("text_b"), row["label"]))
            except ValueError as e:
                raise ValueError(f"{where}: {e} {_FORMAT}") from None
    return tuple(items)


_FORMAT = 'each line must be {"text_a": str, "text_b": str or null, "label": int}.'


def load_examples(path: str | Path, name: str | None = None, num_labels: int | None = None) -> Examples:
    """Read one JSONL file; with num_labels, check every label is in 0..num_labels-1."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} does not exist.")
    st = p.stat()
    ex = Examples(_read_jsonl(str(p), st.st_mtime_ns, st.st_size), name or p.stem)
    if not len(ex):
        raise ValueError(f"{p} is empty; delete it and download or copy the data again.")
    if num_labels is not None and (ex.labels.min() < 0 or ex.labels.max() >= num_labels):
        raise ValueError(f"{p}: labels span {ex.labels.min()}..{ex.labels.max()}, but the task has "
                         f"{num_labels} labels (0..{num_labels - 1}); the file does not match the task.")
    return ex


def bbt_sample(examples: Examples, k: int, seed: int) -> tuple[list[Example], list[Example]]:
    """The BBT papers' sampler: shuffle indices as np.random.seed(seed); np.random.shuffle would,
    walk them in order, the first k of each label go to train, the next k to dev."""
    labels = examples.labels
    taken = {int(y): 0 for y in np.unique(labels) if y >= 0}  # BBT skips unlabelled rows (-1)
    train: list[Example] = []
    dev: list[Example] = []
    for i in np.random.RandomState(seed).permutation(len(examples)):
        y = int(labels[i])
        if y < 0 or taken[y] >= 2 * k:
            continue
        (train if taken[y] < k else dev).append(examples[i])
        taken[y] += 1
        if len(train) + len(dev) == 2 * k * len(taken):
            break  # every label is full; the rest of the walk would add nothing
    short = sorted(y for y, n in taken.items() if n < 2 * k)
    if short:
        raise ValueError(f"{examples.name}: labels {short} have fewer than 2*k={2 * k} examples; lower k.")
    return train, dev


def load_split(task: str, seed: int = 42, k: int = 16, sampler: str = "fewshot",
               test_size: int | None = None) -> Split:
    """Few-shot train/dev (k per label each) and test for task.

    sampler="fewshot" reads the fixed splits in <dir>/<task>/fewshot/{k}-{seed}/;
    sampler="bbt" redraws them from the full <task>/train.jsonl with the BBT sampler.
    test_size, if given, keeps a fixed random subset of test (seed 0, whatever `seed` is).
    """
    check_task(task)
    seed = check_seed(seed)
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; use one of {SAMPLERS}.")
    if k <= 0:
        raise ValueError(f"k must be positive, got k={k}.")
    tdir = data_dir(task) / task
    n_labels = len(task_labels(task))
    if sampler == "fewshot":
        fdir = tdir / "fewshot" / f"{k}-{seed}"
        if not fdir.is_dir():
            have = sorted((p.name for p in (tdir / "fewshot").glob("*-*") if p.is_dir()),
                          key=lambda s: tuple(int(x) if x.isdigit() else 0 for x in s.split("-")))
            seeds = [s.split("-", 1)[1] for s in have if s.startswith(f"{k}-")]
            raise FileNotFoundError(
                f"No few-shot split {fdir}. Seeds with k={k}: {', '.join(seeds) or 'none'} "
                f"(folders: {', '.join(have) or 'none'}). Pick one of those, or use sampler='bbt' "
                "where a full train.jsonl exists.")
        tag = f"({k}-shot, seed {seed})"
        train = load_examples(fdir / "train.jsonl", f"{task}/train {tag}", n_labels)
        dev = load_examples(fdir / "dev.jsonl", f"{task}/dev {tag}", n_labels)
    else:
        full_path = tdir / "train.jsonl"
        if not full_path.is_file():
            raise FileNotFoundError(
                f"sampler='bbt' needs the full training set {full_path}, which only sst2 and mrpc ship "
                f"with; use sampler='fewshot' for {task}, or bbtkit.download.download_task({task!r}) to get it.")
        full = load_examples(full_path, f"{task}/train (full)", n_labels)
        tr, dv = bbt_sample(full, k, seed)
        tag = f"(bbt {k}-shot, seed {seed})"
        train, dev = Examples(tr, f"{task}/train {tag}"), Examples(dv, f"{task}/dev {tag}")
    test = load_examples(tdir / "test.jsonl", f"{task}/test", n_labels)
    if test_size is not None:
        test = test.subset(test_size, seed=0)
    return Split(task, seed, train, dev, test)
