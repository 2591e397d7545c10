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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .examples import Example, Examples, _short
from .tasks import TASKS as _REGISTRY

ENV_VAR = "BBTKIT_DATA"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the bbtkit package
TASKS = tuple(_REGISTRY)  # the benchmark tasks' names, from the one task registry (tasks.TASKS)
SAMPLERS = ("fewshot", "bbt")

# Built-in label names (the same as index.json), from the task registry; used when no data directory says otherwise.
TASK_LABELS: dict[str, list[str]] = {name: list(t.class_names) for name, t in _REGISTRY.items()}

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
    ../shared/data, <project>/../shared/data that holds `task/` (or any data, if task is None).
    task may be a benchmark task or a task of one's own whose folder is in one of those places."""
    if task is not None and not isinstance(task, str):
        raise ValueError(f"data_dir takes a task's folder name, got {type(task).__name__}; "
                         "for a bk.Task pass task.name.")
    what = f"a '{task}/' folder" if task else "index.json or a task folder"
    env = os.environ.get(ENV_VAR)
    places = [Path(env).expanduser()] if env else _candidates()
    for d in places:
        if _has_data(d, task):
            return d
    if task is not None and task not in TASKS:
        raise ValueError(unknown_task(task, places))
    if env:
        raise FileNotFoundError(f"{ENV_VAR}={env} has no {what}. Point {ENV_VAR} at a data "
                                f"directory that has one, or unset it to search the default places.")
    raise FileNotFoundError(
        f"No data directory with {what} found. Searched ${ENV_VAR} (unset), "
        + ", ".join(map(str, places)) + ". Set " + ENV_VAR + " to a data directory, or run "
        f"bbtkit.data.download.download_task({(task or 'task')!r}) (needs internet and `pip install datasets`) "
        "to fill ./data.")


LAYOUT = ("test.jsonl and fewshot/16-SEED/train.jsonl, fewshot/16-SEED/dev.jsonl (16 examples per label each; "
          "SEED an integer such as 42), optionally labels.json (the class names) and train.jsonl (the full "
          'training set); one example a line: {"text_a": str, "text_b": str or null, "label": int}')


def unknown_task(name: str, searched) -> str:
    """The error for a task name that is neither a benchmark nor a folder in the data directory."""
    close = difflib.get_close_matches(str(name).lower(), TASKS, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (f"Unknown task {name!r}.{hint} Known tasks: {', '.join(TASKS)}; and no data directory "
            f"has a {name!r} folder (searched {', '.join(dict.fromkeys(map(str, searched)))}). For a task of your own: make a "
            f"folder {name}/ holding {LAYOUT}; put it in a data directory (or set ${ENV_VAR}), or pass its path, "
            f"bk.load_split('path/to/{name}'); and define how to ask the model with bk.Task({name!r}, "
            "label_words=(...), templates={'causal': '... {text_a} ... {mask}'}). bk.check_task_folder(path, task) "
            "checks a folder.")


def task_folder(task) -> tuple[str, Path, int | None]:
    """(name, folder, number of classes or None) of what ``load_split`` was given: a benchmark name, the
    name of a folder in the data directory, a ``bk.Task`` (its name is the folder's), or a folder path."""
    from .tasks import Task

    if isinstance(task, Task):
        return task.name, data_dir(task.name) / task.name, task.num_classes
    if isinstance(task, os.PathLike) or (isinstance(task, str) and ("/" in task or os.sep in task
                                                                     or task.startswith((".", "~")))):
        folder = Path(task).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder. A task folder holds {LAYOUT}.")
        return folder.name, folder, _folder_classes(folder)
    if not isinstance(task, str):
        raise ValueError(f"A task is a benchmark name ({', '.join(TASKS)}), a bk.Task or a folder path, "
                         f"got {type(task).__name__}.")
    folder = data_dir(task) / task
    return task, folder, len(task_labels(task)) if task in TASKS else _folder_classes(folder)


def _folder_classes(folder: Path) -> int | None:
    """The number of classes a task folder's labels.json names (None without one)."""
    labels = folder / "labels.json"
    return len(_labels(_read_json(labels), labels)) if labels.is_file() else None


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


def load_split(task, seed: int = 42, k: int = 16, sampler: str = "fewshot",
               test_size: int | None = None) -> Split:
    """Few-shot train/dev (k per label each) and test for task: a benchmark name, a ``bk.Task`` of one's
    own (its name is its folder in the data directory), or the path of a task folder (``LAYOUT``).

    sampler="fewshot" reads the fixed splits in <dir>/<task>/fewshot/{k}-{seed}/;
    sampler="bbt" redraws them from the full <task>/train.jsonl with the BBT sampler.
    test_size, if given, keeps a fixed random subset of test (seed 0, whatever `seed` is).
    """
    seed = check_seed(seed)
    if sampler not in SAMPLERS:
        raise ValueError(f"Unknown sampler {sampler!r}; use one of {SAMPLERS}.")
    if k <= 0:
        raise ValueError(f"k must be positive, got k={k}.")
    task, tdir, n_labels = task_folder(task)
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
                f"with; use sampler='fewshot' for {task}, or bbtkit.data.download.download_task({task!r}) to get it.")
        full = load_examples(full_path, f"{task}/train (full)", n_labels)
        tr, dv = bbt_sample(full, k, seed)
        tag = f"(bbt {k}-shot, seed {seed})"
        train, dev = Examples(tr, f"{task}/train {tag}"), Examples(dv, f"{task}/dev {tag}")
    test = load_examples(tdir / "test.jsonl", f"{task}/test", n_labels)
    if test_size is not None:
        test = test.subset(test_size, seed=0)
    return Split(task, seed, train, dev, test)
