"""Filling a data directory from the Hugging Face Hub (needs internet and ``pip install datasets``).

``download_task("sst2")`` writes ``data/sst2/{train,test}.jsonl``, ``labels.json`` and few-shot splits
drawn with the BBT sampler, in the one JSONL format that :mod:`bbtkit.data.splits` reads.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .splits import TASK_LABELS, Example, Examples, bbt_sample, check_task

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
