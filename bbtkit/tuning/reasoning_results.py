"""A run over a reasoning set, as EoT and its baselines record it, and its file: saved atomically with a
checksum, read back with every field checked, so that a run resumes only from a file it wrote itself.

A resumed run adds its calls to the file's, so an edited file (``calls`` lowered, a trace removed) would
report fewer calls than were spent: the checksum refuses it. A file saved before results carried one is
read when its calls are those its traces record (one call a step).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_AGAIN = "Delete it to start over, or pass another path."


@dataclass
class ReasoningResult:
    """A run over a reasoning set: accuracy, the API calls and tokens it took, and one trace per problem
    (every step's input and output, the instruction used, the prediction). ``stop`` says why it ended."""

    method: str
    dataset: str
    kind: str
    model_name: str
    config: dict
    traces: list = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    stop: str = "done"

    @property
    def n(self) -> int:
        return len(self.traces)

    @property
    def accuracy(self) -> float:
        return sum(t["correct"] for t in self.traces) / max(self.n, 1)

    @property
    def recorded_calls(self) -> int:
        """The calls the traces record: one per step (an unfinished batch's calls are spent but not recorded)."""
        return sum(len(t["steps"]) for t in self.traces)

    def summary(self) -> str:
        return (f"{self.method} on {self.dataset} with {self.model_name}: accuracy {self.accuracy:.1%} "
                f"({sum(t['correct'] for t in self.traces)}/{self.n}), {self.calls} API calls, "
                f"{self.seconds / 60:.1f} min" + ("" if self.stop == "done" else f" (stopped: {self.stop})"))

    def save(self, path: str | Path) -> Path:
        """One JSON file with its checksum, written atomically (a crash mid-write leaves the old file whole,
        and no temporary file behind)."""
        path = writable(path)
        doc = json.loads(json.dumps(dataclasses.asdict(self)))
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({**doc, "checksum": _digest(doc)}, f, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ReasoningResult":
        """A saved run; a file that is cut off, edited or not a run is a ValueError that says so."""
        return read(path)[0]


def writable(path) -> Path:
    """path as a Path to a JSON file that can be written (its folder made), or a ValueError that says why;
    checked before a run spends a call."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"path must be a file path (str or Path), not {type(path).__name__} {path!r}.")
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ValueError(f"path {path} is a folder, not a file; pass a file path such as {path / 'run.json'}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise ValueError(f"path {path} cannot be written ({err.strerror or err}); pass a path in a folder you can "
                         "write to.") from None
    return path


def _digest(doc: dict) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def _of(*kinds):
    return lambda v: isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds)


def _count(v) -> bool:
    return _of(int)(v) and v >= 0


_FIELDS = {"method": (_of(str), "a string"), "dataset": (_of(str), "a string"), "kind": (_of(str), "a string"),
           "model_name": (_of(str), "a string"), "config": (_of(dict), "an object"), "traces": (_of(list), "a list"),
           "stop": (_of(str), "a string"), "calls": (_count, "a whole number >= 0"),
           "prompt_tokens": (_count, "a whole number >= 0"), "completion_tokens": (_count, "a whole number >= 0"),
           "seconds": (lambda v: _of(int, float)(v) and math.isfinite(v) and v >= 0, "a number >= 0")}
_TRACE = {"question": str, "answer": str, "steps": list, "correct": bool, "prediction": (str, type(None))}
_STEP = ("step", "prompt", "output")


def _problem(doc) -> str | None:
    """What is wrong with a saved run's fields (None if nothing)."""
    if not isinstance(doc, dict):
        return f"it holds a {type(doc).__name__}, not a saved reasoning result"
    missing, unknown = set(_FIELDS) - set(doc), set(doc) - set(_FIELDS)
    if missing or unknown:
        return f"it is not a saved reasoning result (missing {sorted(missing)}, unknown {sorted(unknown)})"
    for name, (ok, what) in _FIELDS.items():
        if not ok(doc[name]):
            return f"its field {name} must be {what}, not {doc[name]!r:.60}"
    for i, t in enumerate(doc["traces"]):
        bad = next((k for k, kinds in _TRACE.items() if not isinstance(t, dict) or not isinstance(t.get(k), kinds)), None)
        if bad or not all(isinstance(s, dict) and all(isinstance(s.get(k), str) for k in _STEP) for s in t["steps"]):
            return f"its trace {i} has no valid {bad or 'steps'}"
    return None


def read(path) -> tuple[ReasoningResult, bool]:
    """(the saved run, whether its checksum was verified: False for a file saved before runs carried one)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, TypeError) as err:
        raise ValueError(f"{path} cannot be read as a saved reasoning result ({err}). {_AGAIN}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a whole JSON file ({err.msg}, line {err.lineno}): it was cut off or "
                         f"edited. {_AGAIN}") from None
    checksum = doc.pop("checksum", None) if isinstance(doc, dict) else None
    why = _problem(doc)
    if why is None and checksum is not None and checksum != _digest(doc):
        why = "it was changed after it was saved (its checksum does not match), so its calls cannot be trusted"
    if why is None and doc["calls"] < sum(len(t["steps"]) for t in doc["traces"]):
        why = f"it reports {doc['calls']} calls, fewer than the {sum(len(t['steps']) for t in doc['traces'])} its traces record"
    if why is not None:
        raise ValueError(f"{path}: {why}. {_AGAIN}")
    return ReasoningResult(**doc), checksum is not None
