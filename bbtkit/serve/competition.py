"""The competition: saved results scored on test splits that never leave the server, within a per-key
number of submissions, and a leaderboard (JSON, and a server-rendered HTML page with a plot).

A submission is a saved result folder sent as JSON (``result.json`` as text, z as numbers, AJO's classifier
as base64 safetensors): the server writes it to a temporary folder and loads it with ``load_result``, whose
checksums refuse a folder whose parts do not belong together. It is scored as the run would have scored
it (``test_score``), and only the score comes back; no prediction or label is ever sent.
"""
from __future__ import annotations

import base64
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from ..api.blackbox import evaluate
from ..data.splits import load_split
from ..data.tasks import get_task
from ..methods.ajo import evaluate_parts
from ..tuning.result_builder import load_result

MAX_RESULT = 8 * 2 ** 20  # characters of result.json, and bytes of a classifier


class Competition:
    """The held-back test split of each task, by task name (``tasks``: benchmark names or task folders)."""

    def __init__(self, tasks, test_size: int | None = None):
        self.tests = {}
        for t in tasks:
            split = load_split(t, test_size=test_size)
            self.tests[split.task] = split.test

    def __contains__(self, task: str) -> bool:
        return task in self.tests


def result_from_upload(body: dict):
    """The Result a client's ``submit`` sent, checked as ``load_result`` checks a folder (ValueError if bad)."""
    if not isinstance(body, dict) or not isinstance(body.get("result_json"), str) or not isinstance(body.get("z"), list):
        raise ValueError("A submission is JSON with result_json (the text of result.json), z (its numbers), z_shape "
                         "and classifier (base64 safetensors, or null); bk.connect(...).submit(res) sends one.")
    if len(body["result_json"]) > MAX_RESULT:
        raise ValueError(f"result.json is over {MAX_RESULT} characters.")
    shape = body.get("z_shape")
    if not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(n, int) and n >= 0 for n in shape) \
            or shape[0] * shape[1] != len(body["z"]):
        raise ValueError("z_shape must be [rows, columns] of z, whose numbers z holds row by row.")
    with tempfile.TemporaryDirectory(prefix="bbtkit-submission-") as tmp:
        folder = Path(tmp)
        (folder / "result.json").write_text(body["result_json"], encoding="utf-8")
        np.savez(folder / "z.npz", z=np.asarray(body["z"], dtype=np.float64).reshape(shape))
        if body.get("classifier"):
            raw = base64.b64decode(body["classifier"], validate=True)
            if len(raw) > MAX_RESULT:
                raise ValueError(f"The classifier is over {MAX_RESULT} bytes.")
            (folder / "classifier.safetensors").write_bytes(raw)
        try:
            return load_result(folder)
        except ValueError as err:  # say what is wrong without the server's folder
            raise ValueError(str(err).replace(str(folder), "the submitted result")) from None


def test_score(model, res, examples) -> float:
    """The task's metric of a result on examples, as its run scores its test split."""
    task = res.task_definition or get_task(res.task)
    if res.classifier is not None:  # AJO and Feature-MLP: the mixture of the label words and f
        return evaluate_parts(model, task, examples, res)["joint"]
    return evaluate(model, task, examples, res.prompt, position=res.position, calibration=res.calibration,
                    adapters=res.adapters)


def check_submission(res, task: str, competition: Competition, model) -> None:
    """A result may be scored for ``task`` only if it was tuned for it, on the served model."""
    if task not in competition:
        raise LookupError(f"This server's competition has no task {task!r}; it has {sorted(competition.tests)}.")
    if res.task != task:
        raise ValueError(f"This result was tuned for {res.task!r}, not {task!r}: submit it to its own task.")
    definition = res.task_definition
    if definition is not None and competition.tests[task].labels.max() >= definition.num_classes:
        raise ValueError(f"This result's task has {definition.num_classes} classes; {task!r} has more.")
    if res.model != model.name:
        raise ValueError(f"This result was tuned on {res.model}, but the server scores with {model.name}.")
    if res.method == "in_context" or (res.config or {}).get("demonstrations_per_class"):
        raise ValueError("In-context results carry their demonstrations outside the result; submit a tuned method.")


def best_rows(submissions: list[dict]) -> list[dict]:
    """Each student's best submission (the earliest of equal scores), best first."""
    best: dict[str, dict] = {}
    for s in submissions:  # oldest first
        if s["name"] not in best or s["score"] > best[s["name"]]["score"]:
            best[s["name"]] = s
    return sorted(best.values(), key=lambda s: (-s["score"], s["at"]))


def leaderboard(ledger, competition: Competition) -> dict:
    return {task: [{**r, "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["at"]))}
                   for r in best_rows(ledger.submissions(task))] for task in competition.tests}


def page(board: dict, submissions: list[dict], model_name: str) -> str:
    """The leaderboard as HTML without JavaScript: per task a table and an SVG plot of score against calls."""
    from html import escape

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Leaderboard</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{padding:.2em .8em;border-bottom:1px solid #ccc;text-align:left}</style></head><body>"
             f"<h1>Leaderboard</h1><p>Scored on held-back test splits with {escape(model_name)}. Calls: what the "
             "server charged the key up to the submission.</p>"]
    for task, rows in board.items():
        parts.append(f"<h2>{escape(task)}</h2>")
        if not rows:
            parts.append("<p>No submission yet.</p>")
            continue
        parts.append("<table><tr><th>#</th><th>student</th><th>method</th><th>score</th><th>calls</th><th>date (UTC)</th></tr>")
        parts += [f"<tr><td>{i}</td><td>{escape(r['name'])}</td><td>{escape(r['method'])}</td><td>{r['score']:.4f} "
                  f"{escape(r['metric'])}</td><td>{r['calls_charged']}</td><td>{r['date']}</td></tr>"
                  for i, r in enumerate(rows, 1)]
        parts.append("</table>" + _plot([s for s in submissions if s["task"] == task], task))
    return "".join(parts) + "</body></html>"


def _plot(subs: list[dict], task: str) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    ax.scatter([s["calls_charged"] for s in subs], [s["score"] for s in subs], s=18, alpha=0.7)
    ax.set(xlabel="API calls charged", ylabel=subs[0]["metric"] if subs else "score", title=f"{task}: every submission")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


