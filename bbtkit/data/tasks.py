"""Tasks: a template per model family, label words (the verbalizer), and the metric.

A task turns classification into "fill in the answer": the template wraps an example, the model
scores one label word per class at the answer position, and the best-scoring word is the prediction.

Define your own in a few lines::

    task = bk.Task("spam", label_words=("ham", "spam"),
                   templates={"causal": "Message: {text_a}\\nIs this message spam? Answer: It is {mask}"})
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import torch

FAMILIES = ("mlm", "causal")
METRICS = ("accuracy", "f1", "macro_f1")
_FIELDS = re.compile(r"\{(\w*)\}")  # {name} in a template; only text_a, text_b and mask are fields


class LabelWordError(ValueError):
    """A label word is not exactly one token for the model's tokenizer, or two are the same token."""


@dataclass(frozen=True)
class Task:
    """A classification task as a cloze problem.

    name: short id, also the data folder name (``"sst2"``).
    label_words: one word per class, in label order; or ``{"mlm": (...), "causal": (...)}``.
    templates: ``{"mlm": ..., "causal": ...}`` with the fields ``{text_a}``, ``{text_b}`` and
        ``{mask}`` (the answer). A causal template ends with ``{mask}``: the answer is the next token.
    metric: ``"accuracy"``, ``"f1"`` (binary, class 1 positive) or ``"macro_f1"``.
    labels: class names for display (defaults to the label words).
    """

    name: str
    label_words: tuple[str, ...] | dict[str, tuple[str, ...]]
    templates: dict[str, str]
    metric: str = "accuracy"
    labels: tuple[str, ...] | None = None
    description: str = ""
    _words: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"A task needs a name (a non-empty string), got {self.name!r}.")
        words = self.label_words
        if isinstance(words, str) or not isinstance(words, (dict, list, tuple)):
            raise ValueError(f"Task {self.name!r}: label_words must be a tuple of words, one per class, "
                             f"or {{family: (...)}}; got {type(words).__name__}.")
        words = {f: tuple(words[f]) for f in words} if isinstance(words, dict) else {f: tuple(words) for f in FAMILIES}
        bad = [w for ws in words.values() for w in ws if not isinstance(w, str) or not w.strip()]
        if bad:
            raise ValueError(f"Task {self.name!r}: every label word must be a non-empty string, got {bad[0]!r}.")
        if not words or any(len(w) < 2 for w in words.values()):
            raise ValueError(f"Task {self.name!r} needs at least two label words (one per class).")
        sizes = {len(w) for w in words.values()}
        if len(sizes) != 1:
            raise ValueError(f"Task {self.name!r}: every family needs the same number of label words, got {words}.")
        for fam, ws in words.items():
            if len(set(ws)) != len(ws):
                raise ValueError(f"Task {self.name!r}: label words for {fam} repeat a word: {ws}.")
        object.__setattr__(self, "_words", words)
        if not isinstance(self.templates, dict) or not self.templates:
            raise ValueError(f"Task {self.name!r} needs at least one template, e.g. templates={{'causal': ...}}.")
        for fam, tpl in self.templates.items():
            if fam not in FAMILIES:
                raise ValueError(f"Task {self.name!r}: template family {fam!r} is unknown; use {FAMILIES}.")
            if not isinstance(tpl, str):
                raise ValueError(f"Task {self.name!r}: the {fam} template must be a string, got {tpl!r}.")
            found = _FIELDS.findall(tpl)
            unknown = sorted(set(found) - {"text_a", "text_b", "mask"})
            if unknown:
                raise ValueError(f"Task {self.name!r}: the {fam} template {tpl!r} has unknown field(s) "
                                 f"{', '.join('{' + u + '}' for u in unknown)}; a template may use only "
                                 "{text_a}, {text_b} and {mask}.")
            if found.count("mask") > 1:
                raise ValueError(f"Task {self.name!r}: the {fam} template {tpl!r} has more than one {{mask}}.")
            if "{mask}" not in tpl or "{text_a}" not in tpl:
                raise ValueError(f"Task {self.name!r}: the {fam} template must contain {{text_a}} and {{mask}}: {tpl!r}")
            if fam == "causal" and tpl.rstrip().endswith("{mask}") is False:
                raise ValueError(f"Task {self.name!r}: a causal template ends with {{mask}} (the answer is the "
                                 f"next token), got {tpl!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {self.metric!r}.")
        if self.labels is not None and len(self.labels) != self.num_classes:
            raise ValueError(f"Task {self.name!r}: {len(self.labels)} labels but {self.num_classes} label words.")

    @property
    def num_classes(self) -> int:
        return len(next(iter(self._words.values())))

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.labels or self.words("causal" if "causal" in self.templates else "mlm")

    def words(self, family: str) -> tuple[str, ...]:
        return self._words.get(family) or next(iter(self._words.values()))

    def template(self, family: str) -> str:
        if family not in self.templates:
            raise ValueError(f"Task {self.name!r} has no template for {family} models; it has "
                             f"{sorted(self.templates)}. Add one: dataclasses.replace(task, templates={{...}}).")
        return self.templates[family]

    def label_ids(self, lm) -> torch.Tensor:
        """Token id of each label word, (classes,). Each word must be exactly one token."""
        ids = []
        for word in self.words(lm.family):
            pieces = lm.tokenizer.tokenize(" " + word.strip())
            if len(pieces) != 1:
                raise LabelWordError(
                    f"Label word {word!r} of task {self.name!r} is {len(pieces)} tokens for {lm.name}: {pieces}. "
                    f"Pick a word that is a single token, e.g. check lm.tokenizer.tokenize(' ' + word).")
            tid = lm.tokenizer.convert_tokens_to_ids(pieces[0])
            if tid == lm.tokenizer.unk_token_id:
                raise LabelWordError(f"Label word {word!r} of task {self.name!r} is unknown to {lm.name}'s "
                                     f"vocabulary (it maps to {lm.tokenizer.unk_token!r}). Pick another word.")
            if tid in ids:
                other = self.words(lm.family)[ids.index(tid)]
                raise LabelWordError(
                    f"Label words {other!r} and {word!r} of task {self.name!r} are the same token for {lm.name} "
                    f"({pieces[0]!r}, id {tid}), so one class could never be predicted. Pick words that differ "
                    "after tokenisation.")
            ids.append(tid)
        return torch.tensor(ids, dtype=torch.long)

    def with_template(self, template: str, family: str = "causal", label_words=None) -> "Task":
        """A copy with another template (and optionally other label words) for one family."""
        words = self.label_words if label_words is None else {**self._words, family: tuple(label_words)}
        return dataclasses.replace(self, templates={**self.templates, family: template}, label_words=words)

    def fill(self, example, family: str, answer: str | None = None) -> str:
        """The template filled with an example; the answer slot shows ``answer`` (or stays ``{mask}``)."""
        text = self.template(family).replace("{text_a}", example.text_a).replace("{text_b}", example.text_b or "")
        return text.replace("{mask}", "{mask}" if answer is None else answer)

    def with_demonstrations(self, demos, family: str = "causal", separator: str = "\n\n") -> "Task":
        """In-context learning: a copy whose template starts with solved examples (GPT-3 style).

        Each demonstration is the template filled with its text and its label word; the test
        example follows, so the model can copy the pattern.
        """
        words = self.words(family)
        shots = separator.join(self.fill(d, family, words[d.label]) for d in demos)
        return self.with_template(shots + separator + self.template(family), family, words)

    def to_dict(self) -> dict:
        """The definition as plain JSON values (what a saved result keeps); ``Task.from_dict`` rebuilds it."""
        words = ({f: list(w) for f, w in self.label_words.items()} if isinstance(self.label_words, dict)
                 else list(self.label_words))
        return {"name": self.name, "label_words": words,
                "templates": dict(self.templates), "metric": self.metric,
                "labels": None if self.labels is None else list(self.labels), "description": self.description}

    @classmethod
    def from_dict(cls, d: dict) -> "Task":
        words = d["label_words"]
        words = {f: tuple(w) for f, w in words.items()} if isinstance(words, dict) else tuple(words)
        return cls(d["name"], words, dict(d["templates"]),
                   d.get("metric", "accuracy"), None if d.get("labels") is None else tuple(d["labels"]),
                   d.get("description", ""))

    def differences(self, other: "Task") -> list[str]:
        """What differs between two definitions, field by field ("templates: ... != ..."); [] when the same."""
        a, b = self.to_dict(), other.to_dict()
        a["label_words"], b["label_words"] = ({f: list(w) for f, w in t._words.items()} for t in (self, other))
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if k != "description" and a[k] != b[k]]

    def score(self, preds, labels) -> float:
        """The task's metric, in [0, 1]."""
        return score(self.metric, preds, labels, self.num_classes)


# --- metrics --------------------------------------------------------------------------------------
def _f1(preds: np.ndarray, labels: np.ndarray, cls: int) -> float:
    tp = np.sum((preds == cls) & (labels == cls))
    fp = np.sum((preds == cls) & (labels != cls))
    fn = np.sum((preds != cls) & (labels == cls))
    return 0.0 if tp == 0 else float(2 * tp / (2 * tp + fp + fn))


def score(metric: str, preds, labels, num_classes: int) -> float:
    """accuracy; binary F1 with class 1 as positive; or macro-F1 over all classes."""
    preds, labels = np.asarray(preds).ravel(), np.asarray(labels).ravel()
    if preds.shape != labels.shape or preds.size == 0:
        raise ValueError(f"Need as many predictions as labels (>0), got {preds.size} and {labels.size}.")
    if metric == "accuracy":
        return float(np.mean(preds == labels))
    if metric == "f1":
        return _f1(preds, labels, 1)
    if metric == "macro_f1":
        return float(np.mean([_f1(preds, labels, c) for c in range(num_classes)]))
    raise ValueError(f"Unknown metric {metric!r}; use one of {METRICS}.")


# --- the benchmark tasks ---------------------------------------------------------------------------
_PAIR_MLM = "{text_a} ? {mask} , {text_b}"  # the BBT papers' template for sentence pairs
_DBPEDIA = ("Company", "Education", "Artist", "Athlete", "Office", "Transportation", "Building", "Natural",
            "Village", "Animal", "Plant", "Album", "Film", "Written")
# SmolLM2 splits Athlete and Album into two tokens; these single-token words name the same classes.
_DBPEDIA_CAUSAL = ("Company", "Education", "Artist", "Sports", "Politics", "Transportation", "Building", "Nature",
                   "Village", "Animal", "Plant", "Music", "Film", "Book")

_SENTIMENT = "Review: {text_a}\nSentiment: {mask}"
# Causal templates keep the tail after the input short: it is all a cached-context call recomputes.
TASKS: dict[str, Task] = {t.name: t for t in [
    Task("sst2", {"mlm": ("bad", "great"), "causal": ("negative", "positive")},
         {"mlm": "{text_a} . It was {mask} .", "causal": _SENTIMENT},
         labels=("negative", "positive"), description="Movie-review sentiment (SST-2)."),
    Task("yelp", {"mlm": ("bad", "great"), "causal": ("negative", "positive")},
         {"mlm": "{text_a} . It was {mask} .", "causal": _SENTIMENT},
         labels=("negative", "positive"), description="Yelp review polarity."),
    Task("agnews", {"mlm": ("World", "Sports", "Business", "Tech"),
                    "causal": ("World", "Sports", "Business", "Technology")},
         {"mlm": "{mask} News: {text_a}", "causal": "Article: {text_a}\nTopic: {mask}"},
         labels=("World", "Sports", "Business", "Sci/Tech"), description="News topic (AG News)."),
    Task("dbpedia", {"mlm": _DBPEDIA, "causal": _DBPEDIA_CAUSAL}, {"mlm": "[ Category: {mask} ] {text_a}", "causal": "Text: {text_a}\nCategory: {mask}"},
         metric="macro_f1", labels=("Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
                                  "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal", "Plant",
                                  "Album", "Film", "WrittenWork"),
         description="Wikipedia article category (DBpedia-14)."),
    Task("mrpc", ("No", "Yes"), {
        "mlm": _PAIR_MLM, "causal": "Sentence 1: {text_a}\nSentence 2: {text_b}\nSame meaning? {mask}"},
        metric="f1", labels=("not_equivalent", "equivalent"), description="Paraphrase detection (MRPC)."),
    Task("qnli", ("Yes", "No"), {
        "mlm": _PAIR_MLM, "causal": "Question: {text_a}\nSentence: {text_b}\nDoes the sentence answer the question? {mask}"},
        labels=("entailment", "not_entailment"), description="Question answering as entailment (QNLI)."),
    Task("snli", ("Yes", "Maybe", "No"), {
        "mlm": _PAIR_MLM, "causal": "Premise: {text_a}\nHypothesis: {text_b}\nIs the hypothesis true? {mask}"},
        metric="macro_f1", labels=("entailment", "neutral", "contradiction"),
        description="Natural language inference (SNLI)."),
    Task("qqp", ("No", "Yes"), {
        "mlm": _PAIR_MLM, "causal": "Question 1: {text_a}\nQuestion 2: {text_b}\nSame question? {mask}"},
        labels=("not_duplicate", "duplicate"), description="Duplicate questions (QQP)."),
]}


def get_task(name: str) -> Task:
    """One of the benchmark tasks by name (sst2, yelp, agnews, dbpedia, mrpc, snli, qnli, qqp)."""
    if isinstance(name, Task):
        return name
    key = name.lower().replace("-", "").replace("_", "")
    if key in TASKS:
        return TASKS[key]
    close = difflib.get_close_matches(key, TASKS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown task {name!r}.{hint} Known tasks: {', '.join(TASKS)}. "
                     f"To define your own: bk.Task(name, label_words=..., templates=...).")
