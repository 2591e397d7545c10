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

# task -> (HF dataset, config or None, train split, test split, {our field: HF field or None}).
# GLUE test labels are hidden, so BBT (and we) report GLUE validation as "test".
HF_SOURCES: dict[str, tuple[str, str | None, str, str, dict[str, str | None]]] = {
    "sst2": ("nyu-mll/glue", "sst2", "train", "validation", {"text_a": "sentence", "text_b": None}),
    "mrpc": ("nyu-mll/glue", "mrpc", "train", "validation", {"text_a": "sentence1", "text_b": "sentence2"}),
    "qnli": ("nyu-mll/glue", "qnli", "train", "validation", {"text_a": "question", "text_b": "sentence"}),
    "qqp": ("nyu-mll/glue", "qqp", "train", "validation", {"text_a": "question1", "text_b": "question2"}),
    "snli": ("stanfordnlp/snli", None, "train", "test", {"text_a": "premise", "text_b": "hypothesis"}),
    "agnews": ("fancyzhx/ag_news", None, "train", "test", {"text_a": "text", "text_b": None}),
    "dbpedia": ("fancyzhx/dbpedia_14", None, "train", "test", {"text_a": "content", "text_b": None}),
    "yelp": ("fancyzhx/yelp_polarity", None, "train", "test", {"text_a": "text", "text_b": None}),
}


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None  # second sentence of a pair task, None for single-sentence tasks
    label: int  # index into task_labels(task)


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
        f"bbtkit.data.download_task({(task or 'task')!r}) (needs internet and `pip install datasets`) "
        "to fill ./data.")


def task_labels(task: str) -> list[str]:
    """Label names of task: from <dir>/<task>/labels.json, else <dir>/index.json, else built in."""
    check_task(task)
    try:
        d = data_dir(task)
    except FileNotFoundError:
        return list(TASK_LABELS[task])
    if (d / task / "labels.json").is_file():
        return list(json.loads((d / task / "labels.json").read_text(encoding="utf-8")))
    if (d / "index.json").is_file():
        index = json.loads((d / "index.json").read_text(encoding="utf-8"))
        if task in index.get("tasks", {}):
            return list(index["tasks"][task]["labels"])
    return list(TASK_LABELS[task])


@functools.lru_cache(maxsize=16)
def _read_jsonl(path: str, mtime_ns: int, size: int) -> tuple[Example, ...]:
    # mtime and size are part of the cache key, so an edited file is read again.
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(Example(str(row["text_a"]), row.get("text_b"), int(row["label"])))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{lineno}: not a valid example ({e!r}); each line must be "
                                 '{"text_a": str, "text_b": str or null, "label": int}.') from e
    return tuple(items)


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
                f"with; use sampler='fewshot' for {task}, or download_task({task!r}) to get it.")
        full = load_examples(full_path, f"{task}/train (full)", n_labels)
        tr, dv = bbt_sample(full, k, seed)
        tag = f"(bbt {k}-shot, seed {seed})"
        train, dev = Examples(tr, f"{task}/train {tag}"), Examples(dv, f"{task}/dev {tag}")
    test = load_examples(tdir / "test.jsonl", f"{task}/test", n_labels)
    if test_size is not None:
        test = test.subset(test_size, seed=0)
    return Split(task, seed, train, dev, test)


def _clean(task: str, text: str) -> str:
    if task == "yelp":
        text = text.replace("\\n", " ")  # yelp_polarity keeps newlines as a literal backslash-n
    return text.strip()  # GLUE sentences end in a space; BBT strips DBpedia content


def rows_to_jsonl(task: str, rows: Iterable[dict]) -> list[dict]:
    """Hugging Face `datasets` rows of task -> our {"text_a", "text_b", "label"} dicts.
    Unlabelled rows (label -1, as in SNLI) are dropped."""
    fields = HF_SOURCES[check_task(task)][4]
    out = []
    for row in rows:
        label = int(row["label"])
        if label < 0:
            continue
        b = fields["text_b"]
        out.append({"text_a": _clean(task, row[fields["text_a"]]),
                    "text_b": _clean(task, row[b]) if b else None,
                    "label": label})
    return out


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")  # write then rename: no half-written files on error
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def download_task(task: str, dest: str | Path = "data", seeds: Iterable[int] = (13, 21, 42, 87, 100),
                  k: int = 16) -> Path:
    """Download task from the Hugging Face Hub into <dest>/<task>/ (needs internet and `datasets`).

    Writes train.jsonl, test.jsonl, labels.json and fewshot/{k}-{seed}/{train,dev}.jsonl drawn with
    the BBT sampler. Note: these few-shot splits and some test sets differ from the shared data's
    (LM-BFF / RL-Prompt splits and stand-in test sets); see the data README. Returns <dest>/<task>.
    """
    check_task(task)
    try:
        import datasets
    except ImportError as e:
        raise ImportError("download_task needs the `datasets` package: pip install datasets") from e
    name, config, train_split, test_split, _ = HF_SOURCES[task]
    out = Path(dest) / task
    rows = {}
    for split, fname in ((train_split, "train.jsonl"), (test_split, "test.jsonl")):
        rows[fname] = rows_to_jsonl(task, datasets.load_dataset(name, config, split=split))
        _write_jsonl(out / fname, rows[fname])
    (out / "labels.json").write_text(json.dumps(TASK_LABELS[task]) + "\n", encoding="utf-8")
    full = Examples((Example(**r) for r in rows["train.jsonl"]), f"{task}/train (full)")
    for seed in seeds:
        train, dev = bbt_sample(full, k, seed)
        for part, fname in ((train, "train.jsonl"), (dev, "dev.jsonl")):
            _write_jsonl(out / "fewshot" / f"{k}-{seed}" / fname,
                         ({"text_a": e.text_a, "text_b": e.text_b, "label": e.label} for e in part))
    return out
