"""Reasoning problems (arithmetic and symbolic) and reading an answer out of a model's text.

The sets are Kojima et al.'s zero-shot chain-of-thought collection, one ``{"question", "answer"}`` a line
in ``<data dir>/reasoning/<set>/test.jsonl``. Each set's answers are of one kind: a number, yes or no,
or a string of letters; ``extract_answer`` reads that kind out of free text, and ``is_correct`` compares
numbers as numbers (so "39.0" and "39" agree).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

KINDS = {"multiarith": "number", "singleeq": "number", "addsub": "number", "svamp": "number", "gsm8k": "number",
         "coin_flip": "yes_no", "last_letters": "letters"}
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?|\b(?:" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    question: str
    answer: str


@dataclass
class ReasoningSet:
    """Problems of one set, all with answers of one ``kind`` ("number", "yes_no" or "letters")."""

    name: str
    kind: str
    problems: list[Problem]

    def __len__(self) -> int:
        return len(self.problems)

    def __getitem__(self, i):
        return ReasoningSet(self.name, self.kind, self.problems[i]) if isinstance(i, slice) else self.problems[i]

    def __iter__(self):
        return iter(self.problems)

    def sample(self, n: int, seed: int = 0) -> "ReasoningSet":
        """n problems drawn without replacement (seeded), in their original order."""
        if n >= len(self):
            return self
        idx = np.sort(np.random.RandomState(seed).choice(len(self), size=n, replace=False))
        return ReasoningSet(self.name, self.kind, [self.problems[i] for i in idx])


def load_reasoning(name: str, n: int | None = None, seed: int = 0) -> ReasoningSet:
    """A reasoning set by name (multiarith, singleeq, addsub, svamp, gsm8k, coin_flip, last_letters); n: a
    seeded sample of that many problems."""
    from .data import data_dir

    if name not in KINDS:
        raise ValueError(f"Unknown reasoning set {name!r}; the sets are {', '.join(KINDS)}.")
    path = data_dir("reasoning") / "reasoning" / name / "test.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the reasoning sets live in <data dir>/reasoning/<set>/test.jsonl.")
    problems = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) or "answer" not in row:
                raise ValueError(f"{path}:{lineno}: expected {{\"question\": str, \"answer\": str}}, got {line[:80]!r}.")
            problems.append(Problem(row["question"], str(row["answer"])))
    out = ReasoningSet(name, KINDS[name], problems)
    return out.sample(n, seed) if n is not None else out


def extract_answer(text: str, kind: str, which: str = "first") -> str | None:
    """The answer of ``kind`` in ``text`` (None if there is none): "number" (commas between thousands, a
    leading $ and trailing units are ignored; "-3", "2.50" and number words up to twenty are read; a
    whole number loses its ".0"), "yes_no", "choice" (a letter A-E) or "letters" (the first run of
    letters, lower-cased). which: "first" (an extraction call's reply) or "last" (the end of a reasoning)."""
    if kind not in ("number", "yes_no", "choice", "letters"):
        raise ValueError(f"Unknown answer kind {kind!r}; use number, yes_no, choice or letters.")
    if kind == "number":
        text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.replace("−", "-"))
        found = _NUMBER.findall(text)
        if not found:
            return None
        raw = found[0 if which == "first" else -1]
        value = float(_WORDS[raw.lower()]) if raw.lower() in _WORDS else float(raw)
        return str(int(value)) if value == int(value) else repr(value)
    if kind == "yes_no":
        found = re.findall(r"\b(yes|no)\b", text, re.IGNORECASE)
    elif kind == "choice":
        found = re.findall(r"(?<![A-Za-z])([A-E])(?![A-Za-z])", text)
    else:
        found = re.findall(r"[^\W\d_]+", text)  # letters of any alphabet ("méyl")
    if not found:
        return None
    return found[0 if which == "first" else -1].lower() if kind != "choice" else found[0 if which == "first" else -1]


def is_correct(prediction: str | None, gold: str, kind: str) -> bool:
    """Numbers compare as numbers (to 1e-6); the other kinds as lower-cased text."""
    if prediction is None:
        return False
    if kind == "number":
        try:
            return abs(float(prediction) - float(gold.replace(",", ""))) < 1e-6
        except ValueError:
            return False
    return prediction.strip().lower() == gold.strip().lower()
