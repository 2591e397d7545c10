"""What crosses the wire between the class server and its client, and nothing else.

Tensors travel as safetensors bytes: a JSON header that names each tensor's dtype and shape, then the
raw little-endian data. It is typed (a wrong dtype or shape is seen before anything is computed), it
cannot run code when read (pickle can), it is what the Hugging Face hub stores weights in, and the
``safetensors`` package is already installed with transformers. The request's options ride in the
header's metadata as one JSON string. Tasks and examples travel as plain JSON.
"""
from __future__ import annotations

import json
import struct

import numpy as np
import torch

from ..data.examples import Example, Examples
from ..data.tasks import Task
from ..model.adapter_set import AdapterSet

MAX_BODY = 64 * 2 ** 20  # bytes of one request: a population of 64 deep prompts of a 1B model fits
MAX_HEADER = 2 ** 20
DTYPES = {"F32": np.float32, "I64": np.int64}  # all a request may send


class WireError(ValueError):
    """A request or response that is not well-formed safetensors of the expected kind."""


def pack(tensors: dict, meta: dict | None = None) -> bytes:
    """safetensors bytes of {name: array or tensor} (floats as float32), with ``meta`` as JSON metadata."""
    from safetensors.numpy import save

    arrays = {}
    for name, value in tensors.items():
        if value is None:
            continue
        a = (value.detach().cpu().float() if value.is_floating_point() else value.detach().cpu()).numpy() \
            if torch.is_tensor(value) else np.asarray(value)
        arrays[name] = np.ascontiguousarray(a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int64))
    return save(arrays, metadata={"meta": json.dumps(meta or {})})


def unpack(body: bytes, limit: int = MAX_BODY) -> tuple[dict[str, np.ndarray], dict]:
    """({name: array}, meta) from safetensors bytes; a WireError says what is wrong with them."""
    from safetensors.numpy import load

    if len(body) > limit:
        raise WireError(f"The body is {len(body)} bytes, over the limit of {limit}; send fewer candidates per call.")
    if len(body) < 8:
        raise WireError("The body is not safetensors: it is shorter than its 8-byte header length.")
    (n,) = struct.unpack("<Q", body[:8])
    if n > MAX_HEADER or 8 + n > len(body):
        raise WireError(f"The safetensors header claims {n} bytes, which the body does not hold.")
    try:
        header = json.loads(body[8:8 + n])
    except (UnicodeDecodeError, ValueError):
        raise WireError("The safetensors header is not JSON.") from None
    if not isinstance(header, dict):
        raise WireError("The safetensors header is not a JSON object.")
    for name, info in header.items():
        if name != "__metadata__" and (not isinstance(info, dict) or info.get("dtype") not in DTYPES):
            raise WireError(f"Tensor {name!r} has dtype {info.get('dtype') if isinstance(info, dict) else info!r}; "
                            f"send float32 (or int64 for indices): one of {sorted(DTYPES)}.")
    try:
        arrays = load(bytes(body))
    except Exception as err:  # noqa: BLE001  (the library's error type is not exported; any failure is bad input)
        raise WireError(f"The body is not valid safetensors: {err}.") from None
    try:
        meta = json.loads((header.get("__metadata__") or {}).get("meta", "{}"))
    except ValueError:
        raise WireError("The request's metadata is not JSON.") from None
    if not isinstance(meta, dict):
        raise WireError("The request's metadata must be a JSON object.")
    return arrays, meta


def adapters_to_tensors(adapters: AdapterSet | None) -> tuple[dict, dict]:
    """({name: tensor}, {"scale": s}) of an AdapterSet, names "adapter.<layer>.<target>.A" and ".B"."""
    if adapters is None:
        return {}, {}
    out = {f"adapter.{l}.{t}.{w}": T for l, per in adapters.weights.items() for t, AB in per.items()
           for w, T in zip("AB", AB)}
    return out, {"adapter_scale": adapters.scale}


def adapters_from_tensors(arrays: dict, meta: dict) -> AdapterSet | None:
    """The AdapterSet that ``adapters_to_tensors`` sent (checked as any AdapterSet), or None."""
    weights: dict = {}
    for name, a in arrays.items():
        if not name.startswith("adapter."):
            continue
        parts = name.split(".")
        if len(parts) != 4 or not parts[1].isdigit() or parts[3] not in "AB" or len(parts[3]) != 1:
            raise WireError(f"Adapter tensor {name!r} should be named adapter.<layer>.<q|k>.<A|B>.")
        weights.setdefault(int(parts[1]), {}).setdefault(parts[2], {})[parts[3]] = torch.from_numpy(a)
    if not weights:
        return None
    for l, per in weights.items():
        for t, ab in per.items():
            if set(ab) != {"A", "B"}:
                raise WireError(f"Adapter for layer {l}, {t!r} needs both A and B.")
    return AdapterSet({l: {t: (ab["A"], ab["B"]) for t, ab in per.items()} for l, per in weights.items()},
                      float(meta.get("adapter_scale", 1.0)))


def task_to_json(task: Task) -> dict:
    return {"name": task.name, "label_words": {f: list(w) for f, w in task._words.items()},
            "templates": dict(task.templates), "metric": task.metric,
            "labels": None if task.labels is None else list(task.labels), "description": task.description}


def task_from_json(d: dict) -> Task:
    if not isinstance(d, dict) or not {"name", "label_words", "templates"} <= set(d):
        raise WireError("A task is a JSON object with name, label_words and templates (and metric, labels).")
    words = {f: tuple(w) for f, w in d["label_words"].items()} if isinstance(d["label_words"], dict) else d["label_words"]
    return Task(d["name"], words, dict(d["templates"]), d.get("metric", "accuracy"),
                None if d.get("labels") is None else tuple(d["labels"]), str(d.get("description", ""))[:1000])


def examples_to_json(examples: Examples) -> dict:
    """The texts only: label-word logits do not need the labels, so they never leave the student."""
    return {"name": getattr(examples, "name", "examples"), "rows": [[ex.text_a, ex.text_b] for ex in examples]}


def examples_from_json(d: dict, limit: int = 4096) -> Examples:
    """Unlabelled examples (label 0 stands in) from ``examples_to_json``."""
    rows = d.get("rows") if isinstance(d, dict) else None
    if not isinstance(rows, list) or not rows:
        raise WireError("Examples are a JSON object with rows: [[text_a, text_b or null], ...], at least one.")
    if len(rows) > limit:
        raise WireError(f"{len(rows)} examples in one set; the server takes at most {limit}.")
    if any(not isinstance(r, list) or len(r) != 2 for r in rows):
        raise WireError("Each example row is [text_a, text_b or null].")
    return Examples([Example(a, b, 0) for a, b in rows], name=str(d.get("name", "examples"))[:100])
