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

from ..checksums import array_digest as _digest, as_json, file_digest as _file_digest, json_digest, plain as _jsonable
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
        from ..data.tasks import Task

        if isinstance(self.task, Task):  # a run passes its Task: keep the name, and the definition beside it
            self.task, self.task_spec = self.task.name, self.task.to_dict()

    @property
    def task_definition(self):
        """The ``Task`` this result was tuned on (its templates, label words and metric), rebuilt from the
        saved definition; None for results saved before results kept it."""
        from ..data.tasks import Task

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
    def selection(self) -> dict | None:
        """How the returned z was chosen against the start on dev (``bbtkit.tuning.selection``)."""
        return self.extra.get("selection")

    @property
    def train_loss(self) -> float | None:
        """The optimizer's best training loss at the end (BBTv2, AJO and DFO-LoRA record it)."""
        return self.extra.get("train_loss")

    @property
    def reselected(self) -> dict | None:
        """What ``benchmarks/reselect.py`` did to a cached run: the rule it applied and what the strict rule had returned."""
        return self.extra.get("reselected")

    @property
    def device(self) -> str | None:
        """Where a cached run was computed ("cpu", "cuda"), as the leaderboard and benchmarks record it."""
        return self.extra.get("device")

    @property
    def dtype(self) -> str | None:
        """The dtype a cached run was computed in ("float32", "bfloat16"), where recorded."""
        return self.extra.get("dtype")

    @property
    def budget_scale(self) -> float | None:
        """A leaderboard run's budget as a fraction of the report's (0.1 on a CPU)."""
        return self.extra.get("scale")

    # EvoPrompt: the instruction it returns and how it got there.
    @property
    def instruction(self) -> str | None:
        return self.extra.get("instruction")

    @property
    def archive(self) -> list[dict]:
        """Every instruction scored, with its dev metric, in the order they were made."""
        return self.extra.get("archive", [])

    @property
    def operations(self) -> list[dict]:
        """Every operator call: its generation, its parents and the child instruction it produced."""
        return self.extra.get("operations", [])

    @property
    def generation_calls(self) -> int | None:
        """Calls to the generation API (the LLM as the evolution operator)."""
        return self.extra.get("generation_calls")

    @property
    def fitness_calls(self) -> int | None:
        """Scorings of an instruction on dev (label-word calls)."""
        return self.extra.get("fitness_calls")

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


def calls_to_reach(history: list[dict], target: float, key: str = "dev_metric") -> int | None:
    """API calls after which ``key`` first reached ``target`` (None if it never did): the report's
    "calls to reach a dev target", whose ratio between two methods is their speed-up."""
    for row in history:
        if row.get(key) is not None and row[key] >= target:
            return int(row["calls"])
    return None
