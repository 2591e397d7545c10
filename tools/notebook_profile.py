"""Seconds per cell of an executed notebook, from the timestamps that nbclient records in each code cell's
metadata (``execution``: ``iopub.execute_input`` to ``shell.execute_reply``). A committed notebook keeps them,
so the profile of its last full run costs nothing:

    python tools/notebook_profile.py notebooks/03_*.ipynb            # the committed run, cell by cell
    python tools/notebook_profile.py --top 5 notebooks/*.ipynb       # each notebook's five slowest cells
    python tools/run_notebook.py --profile runs/profile notebooks/03_*.ipynb   # run it, then write its table"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import nbformat


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def cell_seconds(nb) -> list[tuple[int, float, str]]:
    """(cell index, seconds, first source line) for every code cell that carries its timing."""
    rows = []
    for i, cell in enumerate(nb.cells):
        run = cell.get("metadata", {}).get("execution", {})
        if cell.get("cell_type") != "code" or "iopub.execute_input" not in run or "shell.execute_reply" not in run:
            continue
        seconds = (_stamp(run["shell.execute_reply"]) - _stamp(run["iopub.execute_input"])).total_seconds()
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("# NBVAL")]
        rows.append((i, seconds, (lines[0] if lines else "").strip()[:70]))
    return rows


def when_run(nb) -> str:
    """The date and time the notebook's first timed cell started (UTC), or '' when it has none."""
    for cell in nb.cells:
        run = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in run:
            return _stamp(run["iopub.execute_input"]).strftime("%Y-%m-%d %H:%M UTC")
    return ""


def table(nb, name: str, top: int | None = None, where: str = "") -> str:
    """A markdown table of a notebook's cells by seconds, with its total; ``top`` keeps the slowest cells."""
    rows = cell_seconds(nb)
    total = sum(s for _, s, _ in rows)
    shown = sorted(rows, key=lambda r: -r[1])[:top] if top else rows
    head = f"### {name}: {total / 60:.1f} min in {len(rows)} timed cells" + (f", run {when_run(nb)}" if when_run(nb) else "")
    lines = [head] + ([where] if where else []) + ["", "| cell | seconds | share | first line |", "|---|---|---|---|"]
    for i, s, first in shown:
        lines.append(f"| {i} | {s:.1f} | {100 * s / max(total, 1e-9):.0f}% | `{first.replace('|', '/')}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--top", type=int, default=None, help="only each notebook's N slowest cells")
    args = ap.parse_args(argv)
    for p in args.paths:
        nb = nbformat.read(p, as_version=4)
        if not cell_seconds(nb):
            print(f"{p}: no cell carries its timing (never executed by nbclient?)\n", file=sys.stderr)
            continue
        print(table(nb, Path(p).name, args.top))


if __name__ == "__main__":
    main(sys.argv[1:])
