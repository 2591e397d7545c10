"""Tuning results that save and load: no computed prompt is lost.

A result folder holds ``result.json`` (method, task, model, config, projection specs, history,
metrics), ``z.npz`` (the tuned search vectors) and, for AJO and Feature-MLP,
``classifier.safetensors`` (the local classifier f's weights; its shape is in ``extra["head"]``). Projections are stored as their seeds and
sizes and rebuilt on load, so a result is small, and re-evaluating the loaded prompt gives the
same test metric.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .checksums import array_digest as _digest, as_json, file_digest as _file_digest, json_digest, plain as _jsonable
from .projection import Projection


@dataclass
class Result:
    """What a tuning run produced.

    z: (layers, d) tuned search vectors, one row per prompted layer (one row for BBT);
    projections: the matching projection specs; n_tokens, hidden: the prompt's shape;
    layers: which model layers the rows belong to (BBT: [0], the embeddings).
    """

    method: str
    task: str
    model: str
    config: dict
    z: np.ndarray
    projections: list[Projection]
    n_tokens: int
    hidden: int
    layers: list[int]
    num_layers: int
    position: str
    history: list[dict] = field(default_factory=list)
    dev_metric: float | None = None
    test_metric: float | None = None
    api_calls: int = 0
    seconds: float = 0.0
    stop: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    classifier: torch.nn.Module | None = None  # AJO's local classifier f (None for BBT and BBTv2)
    task_spec: dict = field(default_factory=dict)  # the task's definition (Task.to_dict()); {} in older results

    def __post_init__(self) -> None:
        from .tasks import Task

        if isinstance(self.task, Task):  # a run passes its Task: keep the name, and the definition beside it
            self.task, self.task_spec = self.task.name, self.task.to_dict()

    @property
    def task_definition(self):
        """The ``Task`` this result was tuned on (its templates, label words and metric), rebuilt from the
        saved definition; None for results saved before results kept it."""
        from .tasks import Task

        return Task.from_dict(self.task_spec) if self.task_spec else None

    @property
    def prompt(self) -> torch.Tensor:
        """The tuned prompt: (tokens, hidden) for BBT; (num_layers, tokens, hidden) for deep prompts;
        IPL: a ``WeightedPrompt`` (its tokens weighted per input); None when no prompt was tuned
        (Feature-MLP: the manual template)."""
        if not self.layers or self.extra.get("space") == "lora":
            return None
        if self.extra.get("space") == "instance":  # IPL: a WeightedPrompt, weighted per input
            from .spaces import InstancePrompt, WeightedPrompt
            if not self.projections:  # the gradient-trained original: its numbers are z
                return WeightedPrompt.from_flat(self.z, self.n_tokens, self.hidden, self.extra["head_size"])
            return InstancePrompt(self.projections, self.n_tokens, self.hidden, self.extra["head_size"],
                                  self.extra["feature_mean"]).prompt(self.z[0])
        rows = [proj(z).view(self.n_tokens, self.hidden) for proj, z in zip(self.projections, self.z)]
        # the space says; results saved before runs recorded it are shallow when they prompt layer 0 alone
        if self.layers == [0] and self.extra.get("space", "shallow") == "shallow":
            return rows[0]
        deep = torch.zeros(self.num_layers, self.n_tokens, self.hidden)
        for layer, row in zip(self.layers, rows):
            deep[layer] = row
        return deep

    @property
    def adapters(self):
        """DFO-LoRA: the tuned adapters (an ``AdapterSet``), rebuilt from z and the projection seeds;
        None for the prompt methods."""
        if self.extra.get("space") != "lora":
            return None
        from .spaces import LoRASpace

        shapes = {t: tuple(s) for t, s in self.extra["shapes"].items()}
        return LoRASpace(self.projections, self.layers, self.extra["rank"], shapes, self.num_layers,
                         self.hidden).adapters(self.z)

    # What the methods and benchmarks record beyond the fields, read by name (None when not recorded).
    @property
    def seconds_per_call(self) -> float | None:
        """Mean wall seconds per training API call."""
        return self.extra.get("seconds_per_call")

    @property
    def test_parts(self) -> dict | None:
        """AJO and Feature-MLP: the test metric of the mixture ("joint"), the calibrated LM ("lm") and f ("classifier")."""
        return self.extra.get("test_parts")

    @property
    def head_spec(self) -> dict | None:
        """AJO and Feature-MLP: what rebuilds the classifier f (kind, hidden, classes, width) and its mixture weight."""
        return self.extra.get("head")

    @property
    def manual_test(self) -> float | None:
        """The manual prompt's test metric on the same test set, where the run recorded it (benchmarks do)."""
        return self.extra.get("manual_test")

    @property
    def test_size(self) -> int | None:
        """How many test examples ``test_metric`` was measured on, where recorded."""
        return self.extra.get("test_size")

    @property
    def calibration(self):
        """The fitted calibration that goes with the prompt (None when the run used none)."""
        from .calibration import Calibration

        d = self.extra.get("calibration")
        return None if d is None else Calibration.from_dict(d)

    def summary(self) -> str:
        dev = "-" if self.dev_metric is None else f"{self.dev_metric:.3f}"
        test = "-" if self.test_metric is None else f"{self.test_metric:.3f}"
        spent = (f"{self.stop['steps']} gradient steps, no API call" if self.extra.get("mode") == "gradient"
                 else f"{self.api_calls} API call{'' if self.api_calls == 1 else 's'}")
        cal = (self.config or {}).get("calibration")
        name = self.method + (f" + {cal} calibration" if cal else "")
        return f"{name} on {self.task} with {self.model}: dev {dev}, test {test}, {spent}, {self.seconds / 60:.1f} min"

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the result folder atomically: everything goes into a temporary folder beside
        ``path``, which is then renamed into place. A run stopped midway leaves the old result (or
        nothing), never a mix. An existing folder is replaced only with ``overwrite=True``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists. Pass overwrite=True to replace what is there, "
                                  "or save to another folder.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.saving-", dir=path.parent))
        try:
            self._write(tmp)
            if path.exists():  # swap: old aside, new in, old removed; a stop in between leaves no mix
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
                path.rename(old / "result")
                try:
                    tmp.rename(path)
                except BaseException:
                    (old / "result").rename(path)  # the old result goes back where it was
                    raise
                finally:
                    if path.exists():  # the new result, or the old one back: the copy aside can go
                        shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    def _write(self, folder: Path) -> None:
        z = np.ascontiguousarray(np.asarray(self.z, dtype=np.float64))
        meta = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("z", "projections", "classifier")}
        meta["projections"] = [asdict(p) for p in self.projections]
        meta = as_json(meta)  # what load_result reads back, so that its checksum matches
        meta["checksums"] = {"z": _digest(z), "fields": json_digest(meta)}
        if self.classifier is not None:
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()},
                      folder / "classifier.safetensors")
            meta["checksums"]["classifier"] = _file_digest(folder / "classifier.safetensors")
        np.savez(folder / "z.npz", z=z)
        (folder / "result.json").write_text(json.dumps(meta, indent=1, default=_jsonable), encoding="utf-8")


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
        from .guards import warn_model
        warn_model(res, model, path)
    return res


class TaskMismatchWarning(UserWarning):
    """A result is loaded for a task whose definition differs from the one it was tuned on."""


def _compare_task(res: Result, task, path: Path) -> None:
    import warnings
    from .tasks import get_task

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


def calls_to_reach(history: list[dict], target: float, key: str = "dev_metric") -> int | None:
    """API calls after which ``key`` first reached ``target`` (None if it never did): the report's
    "calls to reach a dev target", whose ratio between two methods is their speed-up."""
    for row in history:
        if row.get(key) is not None and row[key] >= target:
            return int(row["calls"])
    return None


_OPTIONAL = {"history", "dev_metric", "test_metric", "api_calls", "seconds", "stop", "extra", "task_spec"}  # have defaults
