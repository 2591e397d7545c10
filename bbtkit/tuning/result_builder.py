"""The one place a :class:`~bbtkit.tuning.results.Result` is constructed: from a run (``build_result``, which
every method, the white-box baselines and AJO's classifier alone call) or from its saved folder
(``load_result``, which checks that the folder's files belong together)."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from ..checksums import array_digest as _digest, file_digest as _file_digest, json_digest
from .projection import Projection
from .results import Result


def build_result(method: str, model, task, cfg, *, z, position: str, space=None, n_tokens: int = 0,
                 layers=(), history: list | None = None, dev=None, test=None, calls: int = 0, stop: dict | None = None,
                 extra: dict | None = None, selection: dict | None = None, classifier=None, config: dict | None = None,
                 seconds: float = 0.0) -> Result:
    """A run's :class:`Result`. space: the run's search space, which gives the prompt's shape (projections,
    tokens, hidden size, layers); without one (an instruction, weights, a classifier alone) the prompt is
    n_tokens x the model's hidden size at ``layers``, with no projection. dev: the selected dev metric (None,
    or not finite: no dev check ran); selection: how the best was chosen against the start (``Trace.selection``),
    kept in ``extra``; config: the recorded config when it is not ``asdict(cfg)``."""
    if space is not None:
        shape = {"projections": list(space.projections), "n_tokens": space.n, "hidden": space.hidden,
                 "layers": list(space.layers)}
    else:
        shape = {"projections": [], "n_tokens": n_tokens, "hidden": model.hidden_size, "layers": list(layers)}
    return Result(method=method, task=task, model=model.name, config=asdict(cfg) if config is None else config,
                  z=z, num_layers=model.num_layers, position=position, history=[] if history is None else history,
                  dev_metric=dev if dev is None or np.isfinite(dev) else None, test_metric=test, api_calls=calls,
                  seconds=seconds, stop={} if stop is None else stop, classifier=classifier,
                  extra={**(extra or {}), **({"selection": selection} if selection else {})}, **shape)


class ResultFileError(ValueError):
    """A saved result folder is damaged: a file is missing, unreadable, or does not match its checksum."""


def load_result(path: str | Path, task=None, model=None) -> Result:
    """Load a saved result; ``result.prompt`` rebuilds the tuned prompt from z and the projection seeds, and
    ``result.task_definition`` the task it was tuned on. With ``task`` (the ``Task`` you will evaluate it
    with), a warning says what differs from the saved definition: a prompt tuned for one template or set
    of label words is not meant for another. With ``model`` (the LM you will evaluate it with), a warning
    says when it is not the one the result was tuned with.

    The checksums in ``result.json`` are verified, so a folder whose files do not belong together
    (edited, truncated, or from two runs) is refused with :class:`ResultFileError`. They cover z.npz,
    classifier.safetensors and every other field of result.json (metrics, history, config, ...);
    folders saved before the fields were covered (no "fields" checksum) have only z.npz and
    classifier.safetensors checked, and folders saved before checksums nothing.
    """
    path = Path(path)
    if not (path / "result.json").exists():
        raise FileNotFoundError(f"No saved result in {path} (expected result.json and z.npz).")
    redo = "Re-run the method and save again, or restore the folder from a copy."
    try:
        meta = json.loads((path / "result.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError(f"it holds a {type(meta).__name__}, not an object")
        checksums = meta.pop("checksums", None)  # None: saved before results carried checksums
        if checksums is not None and not isinstance(checksums, dict):
            raise ValueError(f"checksums holds a {type(checksums).__name__}, not an object")
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ResultFileError(f"{path / 'result.json'} is damaged ({type(e).__name__}: {e}). {redo}") from None
    if "fields" in (checksums or {}) and checksums["fields"] != json_digest(meta):
        raise ResultFileError(f"{path / 'result.json'} was edited after it was saved: its fields (metrics, history, "
                              f"config, ...) do not match their checksum. {redo}")
    try:
        names = {f.name for f in fields(Result)} - {"z", "classifier"}
        missing, unknown = names - set(meta) - _OPTIONAL, set(meta) - names
        if missing or unknown:
            raise ValueError(f"fields missing: {sorted(missing)}; unknown: {sorted(unknown)}")
        meta["projections"] = [Projection(**p) for p in meta["projections"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ResultFileError(f"{path / 'result.json'} is damaged ({type(e).__name__}: {e}). {redo}") from None
    if not (path / "z.npz").exists():
        raise ResultFileError(f"{path / 'z.npz'} is missing, so the tuned vectors are lost. {redo}")
    try:
        with np.load(path / "z.npz") as f:
            z = f["z"]
    except Exception as e:  # BadZipFile, EOFError, KeyError, ValueError: all mean a damaged file
        raise ResultFileError(f"{path / 'z.npz'} is damaged ({type(e).__name__}: {e}). {redo}") from None
    if checksums is not None and checksums.get("z") != _digest(np.ascontiguousarray(z, dtype=np.float64)):
        raise ResultFileError(f"{path / 'z.npz'} does not match the checksum in result.json: the two files come "
                              f"from different runs, or one was edited. {redo}")
    res = Result(z=z, classifier=_load_classifier(path, meta, checksums, redo), **meta)
    if task is not None:
        _compare_task(res, task, path)
    if model is not None:
        from ..guards import warn_model
        warn_model(res, model, path)
    return res


class TaskMismatchWarning(UserWarning):
    """A result is loaded for a task whose definition differs from the one it was tuned on."""


def _compare_task(res: Result, task, path: Path) -> None:
    import warnings
    from ..data.tasks import get_task

    task = get_task(task)
    saved = res.task_definition
    if saved is None:
        if task.name != res.task:
            warnings.warn(f"{path} was tuned on task {res.task!r}, not {task.name!r}.", TaskMismatchWarning, stacklevel=3)
        return
    diff = saved.differences(task)
    if diff:
        warnings.warn(f"{path} was tuned on a different definition of the task than the one given: "
                      + "; ".join(diff) + ". Evaluate it with res.task_definition to use the one it was tuned on.",
                      TaskMismatchWarning, stacklevel=3)


def _load_classifier(path: Path, meta: dict, checksums: dict | None, redo: str):
    head = path / "classifier.safetensors"
    expected = (checksums or {}).get("classifier")
    if not head.exists() and expected is None:
        return None
    if checksums is not None and expected != (_file_digest(head) if head.exists() else None):
        raise ResultFileError(f"{head} is missing or does not match the checksum in result.json. {redo}")
    try:
        from safetensors.torch import load_file
        from .heads import make_head
        spec = meta["extra"]["head"]
        classifier = make_head(spec["kind"], spec["hidden"], spec["classes"], spec["width"])
        classifier.load_state_dict(load_file(head))
    except Exception as e:
        raise ResultFileError(f"{head} could not be loaded ({type(e).__name__}: {e}). {redo}") from None
    return classifier.eval()


_OPTIONAL = {"history", "dev_metric", "test_metric", "api_calls", "seconds", "stop", "extra", "task_spec"}  # have defaults
