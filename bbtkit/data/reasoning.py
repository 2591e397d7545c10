"""Reasoning problems (arithmetic and symbolic) and reading an answer out of a model's text.

The sets are Kojima et al.'s zero-shot chain-of-thought collection, one ``{"question", "answer"}`` a line
in ``<data dir>/reasoning/<set>/test.jsonl``. Each set's answers are of one kind: a number, yes or no,
or a string of letters; ``extract_answer`` reads that kind out of free text, and ``is_correct`` compares
numbers as numbers (so "39.0" and "39" agree).
"""
from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

KINDS = {"multiarith": "number", "singleeq": "number", "addsub": "number", "svamp": "number", "gsm8k": "number",
         "coin_flip": "yes_no", "last_letters": "letters"}
_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
# a number is read whole, scientific notation included ("1.5e3" is 1500, never 1.5); a number word only
# standing alone: one hyphenated to another word ("twenty-one", "one-third") is not read
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|(?<![\w-])(?:" + "|".join(_WORDS) + r")(?![\w-])",
                     re.IGNORECASE)
_MAX_EXPONENT = 1000  # "1e999999" would spell a million digits; no answer is that large: not read
WHICH = ("first", "last")


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
        _check_sample(n, seed)
        if n >= len(self):
            return self
        idx = np.sort(np.random.RandomState(seed).choice(len(self), size=n, replace=False))
        return ReasoningSet(self.name, self.kind, [self.problems[i] for i in idx])


def _check_sample(n, seed) -> None:
    for what, value, low in (("n", n, 1), ("seed", seed, 0)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{what} must be a whole number of at least {low}, not {value!r}"
                             + (" (n=None loads the whole set)." if what == "n" else "."))


def load_reasoning(name: str, n: int | None = None, seed: int = 0) -> ReasoningSet:
    """A reasoning set by name (multiarith, singleeq, addsub, svamp, gsm8k, coin_flip, last_letters); n: a
    seeded sample of that many problems."""
    from .splits import data_dir

    if n is not None:
        _check_sample(n, seed)
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


def _canonical(raw: str) -> str | None:
    """A number as written, exactly, in its plain form: "2.50" -> "2.5", "1.5e3" -> "1500", "-0" -> "0"."""
    if raw.lower() in _WORDS:
        return str(_WORDS[raw.lower()])
    mantissa, _, exponent = raw.lower().partition("e")
    if exponent and len(exponent.lstrip("+-").lstrip("0")) > 4 or exponent and abs(int(exponent)) > _MAX_EXPONENT:
        return None
    text = format(Decimal(raw), "f")
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def extract_answer(text: str, kind: str, which: str = "first") -> str | None:
    """The answer of ``kind`` in ``text`` (None if there is none): "number" (commas between thousands, a
    leading $ and trailing units are ignored; "-3", "2.50", "1.5e3" and number words up to twenty standing
    alone are read, each exactly and whole; a whole number loses its ".0"), "yes_no", "choice" (a letter
    A-E) or "letters" (the first run of letters, lower-cased). which: "first" (an extraction call's reply)
    or "last" (the end of a reasoning). Any text is read; a bad kind or which is a ValueError."""
    if kind not in ("number", "yes_no", "choice", "letters"):
        raise ValueError(f"Unknown answer kind {kind!r}; use number, yes_no, choice or letters.")
    if which not in WHICH:
        raise ValueError(f"which must be 'first' or 'last', not {which!r}.")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string (a model's reply), not {type(text).__name__} {text!r:.80}.")
    if kind == "number":
        text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.replace("−", "-"))
        found = [n for n in map(_canonical, _NUMBER.findall(text)) if n is not None]
        return (found[0] if which == "first" else found[-1]) if found else None
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
            a, b = float(prediction), float(gold.replace(",", ""))
            if math.isinf(a) or math.isinf(b):  # past a float's range: compare the numbers as written
                return Decimal(prediction) == Decimal(gold.replace(",", ""))
            return abs(a - b) < 1e-6
        except (ValueError, ArithmeticError):
            return False
    return prediction.strip().lower() == gold.strip().lower()
