"""Checksums that prove a saved file is what was written: a result folder's ``result.json``, ``z.npz`` and
``classifier.safetensors`` (``bbtkit.tuning.results``), and a run's checkpoint (``bbtkit.tuning.checkpoints``).

A JSON document is checksummed as plain JSON: ``as_json`` turns numpy numbers and arrays into Python
ones first, so that the document read back from the file has the same ``json_digest`` as the one written.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np


def plain(x):
    """``json.dumps``'s ``default``: numpy numbers and arrays as Python values, anything else as its text."""
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def as_json(doc):
    """doc as plain JSON values (str keys, lists, floats), exactly as ``json.loads`` will read it back."""
    return json.loads(json.dumps(doc, default=plain))


def json_digest(doc) -> str:
    """sha256 of a plain-JSON document, independent of key order and indentation."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def array_digest(z: np.ndarray) -> str:
    """sha256 of z's shape and float64 bytes."""
    return hashlib.sha256(repr(z.shape).encode() + z.tobytes()).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def examples_digest(examples) -> str | None:
    """sha256 of a list of examples' texts and labels, in order (None for no examples): what tells one
    split from another."""
    if examples is None:
        return None
    rows = [[e.text_a, e.text_b, int(e.label)] for e in examples]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()
