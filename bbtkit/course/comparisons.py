"""Side by side at equal calls over seeds: what chapters 08-11 compare. Registered methods on a few tasks, read
from the cached runs (the leaderboard's folder for its five tasks, the chapter's own folder for the others), run
first where a cell is missing and the chapter asks for it, labelled by the registry, and tabled alike."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..methods.registry import METHODS, paper_budget
from . import leaderboard as lb


def folder(runs: str | Path, task: str, own: str) -> Path:
    """Where a task's cells are cached: ``runs/leaderboard`` for the leaderboard's tasks, else ``runs/<own>``."""
    return Path(runs) / ("leaderboard" if task in lb.TASKS else own)


def by_seed(found: dict) -> list:
    """Cached runs ({"<task>-<seed>": Result}) in the order of their seeds."""
    return [found[k] for k in sorted(found, key=lambda k: int(k.rsplit("-", 1)[1]))]


def method_runs(runs, method: str, task: str, own: str, setting: str | None = None) -> list:
    """One method's cached runs on one task, by seed ([] when none are cached)."""
    return by_seed(lb.cached_runs(folder(runs, task, own), method, task, setting))


def compare(model, methods, tasks=("sst2", "agnews"), *, runs, own: str, calls: int | None = None,
            recompute: bool = False) -> dict[str, dict[str, list]]:
    """{task: {the registry's label: runs by seed}} for the methods at ``calls`` API calls each (default: the
    leaderboard's SST-2 budget, 300), over the leaderboard's seeds. With recompute, a missing cell is run and
    cached first (a cached one is never run again)."""
    calls = calls or lb.budget("sst2")
    out = {}
    for t in tasks:
        if recompute:
            for m in methods:
                for s in lb.SEEDS:
                    lb.run_entry(model, m, t, s, scale=calls / paper_budget(t), root=folder(runs, t, own))
        out[t] = {METHODS[m].label: method_runs(runs, m, t, own) for m in methods}
    return out


def spread(rs, key=lambda r: r.test_metric) -> str:
    """The mean ± std (in points) of a metric over runs, and how many seeds: "81.2 ± 1.3 (3 seeds)"."""
    v = 100 * np.array([key(r) for r in rs], dtype=float)
    return f"{v.mean():5.1f} ± {v.std():3.1f} ({len(rs)} seed{'s' * (len(rs) != 1)})"


def table(runs: dict[str, dict[str, list]], also=None, also_name: str = "", width: int = 34) -> str:
    """Rows: the methods; columns: the tasks; a cell: the test metric's spread over seeds, then ``also(runs)``
    when given (e.g. calls used, seconds per call) under the heading also_name."""
    tasks = list(runs)
    labels = list(dict.fromkeys(label for t in tasks for label in runs[t]))
    pad = max(len(s) for s in labels) + 2
    head = "test mean ± std" + (f" | {also_name}" if also_name else "")
    lines = [f"{'':{pad}s}" + "".join(f"{t:>{width}s}" for t in tasks), f"{'':{pad}s}" + f"{head:>{width}s}" * len(tasks)]
    for label in labels:
        cells = []
        for t in tasks:
            rs = runs[t].get(label, [])
            cell = "(no cached runs)" if not rs else spread(rs) + (f" | {also(rs)}" if also else "")
            cells.append(f"{cell:>{width}s}")
        lines.append(f"{label:{pad}s}" + "".join(cells))
    return "\n".join(lines)


__all__ = ["by_seed", "compare", "folder", "method_runs", "spread", "table"]
