"""Tuning results that save and load: no computed prompt is lost.

A result folder holds ``result.json`` (method, task, model, config, projection specs, history,
metrics), ``z.npz`` (the tuned search vectors) and, for AJO and Feature-MLP,
``classifier.safetensors`` (the local classifier f's weights; its shape is in ``extra["head"]``). Projections are stored as their seeds and
sizes and rebuilt on load, so a result is small, and re-evaluating the loaded prompt gives the
same test metric.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

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

    @property
    def prompt(self) -> torch.Tensor:
        """The tuned prompt: (tokens, hidden) for BBT; (num_layers, tokens, hidden) for deep prompts;
        None when no prompt was tuned (Feature-MLP: the manual template)."""
        if not self.layers:
            return None
        rows = [proj(z).view(self.n_tokens, self.hidden) for proj, z in zip(self.projections, self.z)]
        if self.layers == [0] and (self.method == "bbt" or self.extra.get("space") == "shallow"):
            return rows[0]
        deep = torch.zeros(self.num_layers, self.n_tokens, self.hidden)
        for layer, row in zip(self.layers, rows):
            deep[layer] = row
        return deep

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
        return (f"{self.method} on {self.task} with {self.model}: dev {dev}, test {test}, "
                f"{self.api_calls} API calls, {self.seconds / 60:.1f} min")

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("z", "projections", "classifier")}
        meta["projections"] = [asdict(p) for p in self.projections]
        (path / "result.json").write_text(json.dumps(meta, indent=1, default=_jsonable))
        np.savez(path / "z.npz", z=np.asarray(self.z, dtype=np.float64))
        head = path / "classifier.safetensors"
        if self.classifier is not None:
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, head)
        elif head.exists():
            head.unlink()  # a result saved over an AJO one must not inherit its classifier
        return path


def load_result(path: str | Path) -> Result:
    """Load a saved result; ``result.prompt`` rebuilds the tuned prompt from z and the projection seeds."""
    path = Path(path)
    if not (path / "result.json").exists():
        raise FileNotFoundError(f"No saved result in {path} (expected result.json and z.npz).")
    meta = json.loads((path / "result.json").read_text())
    meta["projections"] = [Projection(**p) for p in meta["projections"]]
    with np.load(path / "z.npz") as f:
        z = f["z"]
    classifier = None
    if (path / "classifier.safetensors").exists():
        from safetensors.torch import load_file
        from .ajo import make_head
        spec = meta["extra"]["head"]
        classifier = make_head(spec["kind"], spec["hidden"], spec["classes"], spec["width"])
        classifier.load_state_dict(load_file(path / "classifier.safetensors"))
        classifier.eval()
    return Result(z=z, classifier=classifier, **meta)


def calls_to_reach(history: list[dict], target: float, key: str = "dev_metric") -> int | None:
    """API calls after which ``key`` first reached ``target`` (None if it never did): the report's
    "calls to reach a dev target", whose ratio between two methods is their speed-up."""
    for row in history:
        if row.get(key) is not None and row[key] >= target:
            return int(row["calls"])
    return None


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
