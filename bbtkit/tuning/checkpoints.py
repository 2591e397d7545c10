"""A run's checkpoint: one JSON file that ``bbtkit.tuning.loop.tune`` writes atomically every few generations and
``resume=`` reads back.

It holds the events the optimizer was told (replayed on resume, which rebuilds its state exactly), the
records, the best so far, a stateful objective's tensors (base64 safetensors), what the run belongs to
(``owner``: the model, its dtype, the task's definition, digests of the training and dev examples, the
config) and a checksum over all of it. Resuming refuses a file that is not a checkpoint, was edited, or
belongs to another run, with a sentence that says which and what to do.
"""
from __future__ import annotations

import base64
import errno
import json
import os
from pathlib import Path

import numpy as np

from ..checksums import as_json, examples_digest, json_digest

VERSION = 2  # 1: no owner, no checksum (refused: such a file cannot show it was not edited)
PARTS = ("model", "dtype", "task", "split", "config")
FRESH = "delete it to start afresh or pass another checkpoint path"


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed: unreadable, not a checkpoint, edited, or from another run."""


def owner(api, dev, fingerprint) -> dict:
    """What a checkpoint belongs to: the model, its dtype, the task's definition, the split (digests of
    the training API's examples and of the dev scorer's, where it has an API) and the config."""
    model, task = getattr(api, "model", None), getattr(api, "task", None)
    spec = task.to_dict() if hasattr(task, "to_dict") else None
    if spec is not None:
        spec.pop("description", None)  # words for people: changing them changes no run
    return as_json({
        "model": None if model is None else {"name": model.name, "layers": model.num_layers,
                                             "hidden": model.hidden_size},
        "dtype": None if model is None else str(model.dtype).replace("torch.", ""),
        "task": spec,
        "split": {"train": examples_digest(getattr(api, "examples", None)),
                  "dev": examples_digest(getattr(getattr(dev, "api", None), "examples", None))},
        "config": fingerprint})


def check_path(path, name: str) -> None:
    """Refuse a folder before the run spends a call."""
    if path is not None and Path(path).is_dir():
        raise CheckpointError(f"{name}={str(path)!r} is a folder; pass a file path, "
                              f"e.g. {str(Path(path) / 'run.ckpt.json')!r}.")


def save(path: Path, trace, events, state, stateful, belongs_to: dict) -> None:
    """Write the checkpoint atomically (a temporary file beside it, then renamed). Whatever stops the write
    (a full disk, Ctrl-C, a folder in the way) leaves the previous checkpoint and no temporary file."""
    body = as_json({"version": VERSION, "owner": belongs_to, "events": events, "state": state,
                    "history": trace.history,
                    "best_z": None if trace.best_z is None else np.asarray(trace.best_z).tolist(),
                    "best_dev": trace.best_dev if np.isfinite(trace.best_dev) else None,
                    "best_loss": trace.best_loss if np.isfinite(trace.best_loss) else None,
                    "objective": _pack(stateful.state()) if stateful is not None else None,
                    "best_state": _pack(trace.best_state) if trace.best_state is not None else None})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({**body, "checksum": json_digest(body)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def write_failure(path, err: OSError) -> str:
    """The stop reason of a run whose checkpoint could not be written."""
    what = ("Free some disk space" if err.errno == errno.ENOSPC else
            "Pass a file path, not a folder" if isinstance(err, IsADirectoryError) or Path(path).is_dir() else
            "Pass a checkpoint path in a folder you can write to")
    return (f"the checkpoint {path} could not be written ({type(err).__name__}: {err}); the run stopped there and "
            f"returned its best so far. {what}, then run again with resume= the last checkpoint written to go on.")


def load(path: Path, belongs_to: dict) -> dict:
    """The checkpoint's contents, once it has shown it is one, unedited, of this run."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CheckpointError(f"The checkpoint {path} cannot be read ({type(err).__name__}); {FRESH}.") from None
    if not isinstance(doc, dict) or "checksum" not in doc and doc.get("version") != 1:
        held = f"a JSON {type(doc).__name__}" if not isinstance(doc, dict) else "an object without a checksum"
        raise CheckpointError(f"{path} is not a checkpoint of a run (it holds {held}); pass the file that "
                              f"checkpoint= wrote, or {FRESH}.")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"The checkpoint {path} was written by another version of bbtkit (checkpoint version "
                              f"{doc.get('version')!r}, this one reads {VERSION}), so it cannot be checked; {FRESH}.")
    if doc.pop("checksum") != json_digest(doc):
        raise CheckpointError(f"The checkpoint {path} was edited or damaged after it was written (its checksum does "
                              f"not match its contents); resume from an unedited copy, or {FRESH}.")
    differ = [_describe(part, doc["owner"].get(part), belongs_to.get(part)) for part in PARTS
              if doc["owner"].get(part) != belongs_to.get(part)]
    if differ:
        raise CheckpointError(f"The checkpoint {path} belongs to another run: {'; '.join(differ)}. Resume with the "
                              f"same model, dtype, task, split and config, or pass another checkpoint path.")
    return doc


def _describe(part: str, saved, now) -> str:
    """'its config differs (sigma: 1.0 in the checkpoint, 0.5 now)'."""
    if part == "split":
        which = [k for k in ("train", "dev") if (saved or {}).get(k) != (now or {}).get(k)]
        return f"its split differs (other {' and '.join(which)} examples)"
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = [k for k in {**saved, **now} if saved.get(k) != now.get(k)]
        detail = "; ".join(f"{k}: {_short(saved.get(k))} in the checkpoint, {_short(now.get(k))} now" for k in keys)
    else:
        detail = f"{_short(saved)} in the checkpoint, {_short(now)} now"
    return f"its {part} differs ({detail})"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def restore(doc: dict, opt, trace, events, state, count, stateful) -> None:
    """Rebuild the run from a loaded checkpoint, without an API call."""
    for ev in doc["events"]:  # the optimizer told the same losses again: its state, rebuilt exactly
        if "rescore" in ev:
            opt.rescore(ev["rescore"])
        else:
            opt.tell(opt.ask(), np.asarray(ev["tell"]))
    events.extend(doc["events"])
    state.update(doc["state"])
    trace.history = doc["history"]
    trace.best_z = None if doc["best_z"] is None else np.asarray(doc["best_z"], dtype=float)
    trace.best_dev = -np.inf if doc["best_dev"] is None else doc["best_dev"]
    trace.best_loss = np.inf if doc["best_loss"] is None else doc["best_loss"]
    trace.calls = state["calls"]
    count.set(state["calls"])
    if stateful is not None and doc["objective"] is not None:
        stateful.load_state(_unpack(doc["objective"]))
        trace.best_state = None if doc["best_state"] is None else _unpack(doc["best_state"])


def _pack(tensors: dict) -> str:
    from safetensors.torch import save as to_bytes
    return base64.b64encode(to_bytes({k: v.contiguous() for k, v in tensors.items()})).decode()


def _unpack(text: str) -> dict:
    from safetensors.torch import load as from_bytes
    return from_bytes(base64.b64decode(text))
