"""A task of one's own: check that its folder has the layout ``load_split`` reads, and what to beat.

    report = bk.check_task_folder("data/rte", task, model)   # what is there, and what is wrong
    print(report)                                             # a table of files, then problems and notes
    bk.reference_scores(task, split.test)                     # {"chance": ..., "majority": ...}

A folder is ``data.LAYOUT``: ``test.jsonl``, ``fewshot/K-SEED/{train,dev}.jsonl`` (K examples of each
label), and optionally ``labels.json`` and a full ``train.jsonl``.
"""
from __future__ import annotations

import numbers
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..guards import labels_in_range
from ..data.splits import LAYOUT, Examples, _folder_classes, load_examples, task_folder
from ..data.tasks import LabelWordError, Task, get_task

_FEWSHOT = re.compile(r"^(\d+)-(\d+)$")


@dataclass
class FolderReport:
    """What ``check_task_folder`` found. rows: (file, examples, examples per label); problems make
    ``load_split`` or a run fail or mislead; notes are worth knowing."""

    folder: Path
    rows: list[tuple[str, int, list[int]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"{self.folder.name}/: {'ready' if self.ok else f'{len(self.problems)} problem(s)'}",
                 f"  {'file':34s}{'examples':>9s}  per label"]
        lines += [f"  {name:34s}{n:9d}  {counts}" for name, n, counts in self.rows]
        lines += [f"  PROBLEM: {p}" for p in self.problems] + [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython shows the table, not the fields
        p.text(str(self))


def check_task_folder(folder, task=None, model=None, *, max_length: int = 256) -> FolderReport:
    """Check a task folder (a path, a folder name in the data directory, or a ``Task``'s) against
    ``task`` (optional): files and their format, labels within the task's classes, K examples of
    each label in every few-shot split, a second text where the template asks for one, and, given a
    model, single-token label words and inputs that fit ``max_length``."""
    task = get_task(task) if task is not None else None
    if isinstance(max_length, bool) or not isinstance(max_length, numbers.Integral) or max_length < 1:
        raise ValueError(f"check_task_folder: max_length must be a whole number of tokens >= 1, not {max_length!r}.")
    try:
        name, path, n_classes = task_folder(folder if folder is not None else task)
    except (FileNotFoundError, ValueError) as e:
        report = FolderReport(Path(str(getattr(folder, "name", folder))))
        report.problems.append(str(e))
        return report
    report = FolderReport(path)
    named = _folder_classes(path) if (path / "labels.json").is_file() else None
    if task is not None and named is not None and named != task.num_classes:
        report.problems.append(f"labels.json names {named} classes, but task {task.name!r} has {task.num_classes} "
                               f"({', '.join(task.class_names)}): make them agree.")
    n_classes = task.num_classes if task is not None else n_classes
    files = {"test.jsonl": path / "test.jsonl"}
    splits = sorted((p for p in (path / "fewshot").glob("*") if p.is_dir() and _FEWSHOT.match(p.name)),
                    key=lambda p: tuple(map(int, p.name.split("-"))))
    for s in splits:
        files |= {f"fewshot/{s.name}/train.jsonl": s / "train.jsonl", f"fewshot/{s.name}/dev.jsonl": s / "dev.jsonl"}
    if (path / "train.jsonl").is_file():
        files["train.jsonl"] = path / "train.jsonl"
    if not splits:
        report.problems.append(f"no few-shot split: make fewshot/16-42/train.jsonl and dev.jsonl (a folder holds {LAYOUT}).")
    loaded: dict[str, Examples] = {}
    for rel, p in files.items():
        if not p.is_file():
            report.problems.append(f"{rel} is missing.")
            continue
        try:
            loaded[rel] = load_examples(p, rel)
        except ValueError as e:
            report.problems.append(str(e))
    if not loaded:
        return report
    seen = np.concatenate([ex.labels for ex in loaded.values()])
    if n_classes is None:
        n_classes = int(seen.max()) + 1
        report.notes.append(f"no task given and no labels.json: {n_classes} classes assumed from the labels seen.")
    for rel, ex in loaded.items():
        bad = sorted({int(y) for y in ex.labels if y < 0 or y >= n_classes})
        counts = np.bincount(ex.labels[(ex.labels >= 0) & (ex.labels < n_classes)], minlength=n_classes).tolist()
        report.rows.append((rel, len(ex), counts))
        if bad:
            report.problems.append(f"{rel} has labels {bad[:5]} outside 0..{n_classes - 1} ({n_classes} classes).")
        m = _FEWSHOT.match(rel.split("/")[1]) if rel.startswith("fewshot/") else None
        if m and len(set(counts)) > 1 or m and counts[0] != int(m.group(1)):
            report.notes.append(f"{rel}: {counts} examples per label, where the folder name says "
                                f"{m.group(1)} of each.")
        if rel == "test.jsonl" and 0 in counts:
            report.notes.append(f"test.jsonl has no example of label(s) {[c for c, n in enumerate(counts) if n == 0]}.")
    _check_overlap(report, loaded)
    if task is not None:
        _check_against_task(report, task, loaded, model, max_length)
    test_ok = "test.jsonl" in loaded and not any(p.startswith("test.jsonl has labels") for p in report.problems)
    if test_ok and task is not None:
        ref = reference_scores(task, loaded["test.jsonl"])
        report.notes.append(f"to beat on test ({task.metric}): chance {ref['chance']:.3f}, always the majority "
                            f"class {ref['majority']:.3f}.")
    return report


def _check_overlap(report: FolderReport, loaded: dict[str, Examples]) -> None:
    """A dev file that is a copy of its train file, or a test file that is a copy of any other."""
    rows = {rel: Counter((e.text_a, e.text_b, e.label) for e in ex) for rel, ex in loaded.items()}
    pairs = [(rel.replace("/dev.jsonl", "/train.jsonl"), rel) for rel in rows if rel.endswith("/dev.jsonl")]
    pairs += [(rel, "test.jsonl") for rel in rows if rel != "test.jsonl"]
    for a, b in pairs:
        if a in rows and b in rows and rows[a] == rows[b]:
            report.problems.append(f"{b} holds the same examples as {a}: it must be other data (dev selects on "
                                   "examples it was not tuned on, test measures on unseen ones).")


def _check_against_task(report: FolderReport, task, loaded: dict[str, Examples], model, max_length: int) -> None:
    templates = task.templates.values() if model is None else [task.template(model.family)]
    pairs = any("{text_b}" in t for t in templates)
    for rel, ex in loaded.items():
        no_b = sum(e.text_b is None for e in ex)
        if pairs and no_b:
            report.problems.append(f"{rel}: {no_b} examples have no text_b, but the template uses {{text_b}}.")
        if not pairs and no_b < len(ex):
            report.notes.append(f"{rel}: {len(ex) - no_b} examples have a text_b, which the template ignores.")
    if model is None:
        return
    try:
        task.label_ids(model)
    except LabelWordError as e:
        report.problems.append(str(e))
        return
    from ..api.published import token_counts

    for rel, ex in loaded.items():
        counts = token_counts(model, task, ex, max_length)
        cut, longest = [c for _, c in counts], max(n for n, _ in counts)
        n = sum(c > 0 for c in cut)
        if longest > max_length:
            report.problems.append(f"{rel}: max_length={max_length} is too small for the template; formatted "
                                   f"examples need up to {longest} tokens. Pass a larger max_length.")
        elif n == len(ex):
            report.problems.append(f"{rel}: every input is longer than max_length={max_length} tokens and would be "
                                   f"cut (the longest by {max(cut)}); pass a larger max_length.")
        elif n:
            report.notes.append(f"{rel}: {n} of {len(ex)} inputs are longer than max_length={max_length} tokens "
                                f"and would be cut (the longest by {max(cut)}); pass a larger max_length to keep them.")


def reference_scores(task, examples, draws: int = 1000) -> dict[str, float]:
    """What any method must beat, in the task's metric: ``chance``, the expected metric of a uniformly
    random label (1/classes for accuracy; for F1 and macro-F1 the mean over ``draws`` seeded draws), and
    ``majority``, always the most frequent label of ``examples``."""
    task = get_task(task)
    if isinstance(draws, bool) or not isinstance(draws, numbers.Integral) or draws < 1:
        raise ValueError(f"reference_scores: draws must be a whole number >= 1, not {draws!r}.")
    labels = np.asarray([e.label for e in examples])
    if labels.size == 0:
        raise ValueError("reference_scores needs at least one example.")
    labels_in_range(labels, task)
    rng = np.random.default_rng(0)
    chance = 1 / task.num_classes if task.metric == "accuracy" else np.mean(
        [task.score(rng.integers(task.num_classes, size=labels.size), labels) for _ in range(draws)])
    majority = np.bincount(labels, minlength=task.num_classes).argmax()
    return {"chance": float(chance), "majority": task.score(np.full(labels.size, majority), labels)}


# --- a task the course makes itself, for the homework notebook's own run (and CI) --------------------
_THINGS = ("The pasta", "Our waiter", "The hotel room", "The delivery", "This phone", "The concert", "The train ride",
           "My new jacket", "The customer service", "The coffee", "The laptop", "The tour guide")
_GOOD = ("was excellent", "arrived early", "exceeded our expectations", "was worth every penny", "made my day",
         "worked perfectly", "was friendly and quick", "felt like a treat")
_BAD = ("was a disaster", "arrived cold", "broke after a week", "was a waste of money", "ruined the evening",
        "never worked", "was rude and slow", "felt like a scam")
_NEGATABLE = {"excellent": 1, "worth the price": 1, "helpful": 1, "a disaster": 0, "a waste of money": 0, "broken": 0}
_ASIDES = ("", "", " although it rained all day", " even on a Monday", " as my friend had said", " for the second time")


def write_example_task(folder, n_train: int = 400, n_test: int = 200, seeds=(13, 42, 100), k: int = 16) -> Task:
    """Write a small two-class task, customer messages as complaint (0) or praise (1), into ``folder`` in the
    homework's layout (``data.LAYOUT``), and return its ``Task``. Sentences are drawn from a fixed grammar
    (seeded), a quarter of them negated ("The coffee was not excellent"), so the manual prompt is not
    perfect. The homework notebook runs on it where a student has not set a folder of their own."""
    from ..data.splits import bbt_sample
    from ..data.examples import Example

    rng = np.random.default_rng(0)

    def draw() -> Example:
        thing, aside = _THINGS[rng.integers(len(_THINGS))], _ASIDES[rng.integers(len(_ASIDES))]
        if rng.random() < 0.25:
            word, label = list(_NEGATABLE.items())[rng.integers(len(_NEGATABLE))]
            return Example(f"{thing} was not {word}{aside}.", None, 1 - label)
        label = int(rng.integers(2))
        said = (_GOOD if label else _BAD)[rng.integers(len(_GOOD))]
        return Example(f"{thing} {said}{aside}.", None, label)

    folder = Path(folder)
    train, test = [draw() for _ in range(n_train)], [draw() for _ in range(n_test)]
    _write(folder / "train.jsonl", train)
    _write(folder / "test.jsonl", test)
    (folder / "labels.json").write_text('["complaint", "praise"]\n', encoding="utf-8")
    for seed in seeds:
        tr, dv = bbt_sample(Examples(train, "train"), k, seed)
        _write(folder / "fewshot" / f"{k}-{seed}" / "train.jsonl", tr)
        _write(folder / "fewshot" / f"{k}-{seed}" / "dev.jsonl", dv)
    return Task(folder.name, ("negative", "positive"),
                {"causal": "Customer: {text_a}\nTone: {mask}", "mlm": "{text_a} The tone is {mask} ."},
                labels=("complaint", "praise"), description="Customer messages: complaint or praise (made up).")


def _write(path: Path, examples) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text_a": e.text_a, "text_b": e.text_b, "label": e.label}) + "\n"
                            for e in examples), encoding="utf-8")
