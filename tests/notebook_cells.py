"""Run a notebook's own cell in a test: the loops the chapters show in plain view are pinned to the package
by executing the cell as committed (changing the notebook can fail the test), on a tiny model."""
from __future__ import annotations

import ast
import json
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def code_cells(notebook: str) -> list[str]:
    """The sources of a notebook's code cells, in order."""
    nb = json.loads((NOTEBOOKS / notebook).read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def cell(notebook: str, marker: str) -> tuple[int, str]:
    """(index among the code cells, source) of the one code cell that contains ``marker``."""
    found = [(i, s) for i, s in enumerate(code_cells(notebook)) if marker in s]
    if len(found) != 1:
        raise LookupError(f"{len(found)} code cells of {notebook} contain {marker!r}; the test needs exactly one.")
    return found[0]


def imports(notebook: str, before: int) -> str:
    """The top-level import statements of the code cells before cell ``before`` (no model loads, no runs)."""
    lines = []
    for src in code_cells(notebook)[:before]:
        tree = ast.parse(src)
        lines += [ast.get_source_segment(src, n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n".join(lines)


def run_cell(notebook: str, *markers: str, **names) -> dict:
    """Execute the notebook's imports, then ``names`` (the test's tiny model, data and spies, which take the
    place of what earlier cells computed), then each cell containing one of ``markers``, in the order given,
    in one namespace; returns the namespace."""
    found = [cell(notebook, m) for m in markers]
    ns: dict = {"__name__": "__notebook__"}
    exec(compile(imports(notebook, found[0][0]), f"{notebook}: imports", "exec"), ns)
    ns.update(names)
    for i, src in found:
        exec(compile(src, f"{notebook}: code cell {i}", "exec"), ns)
    return ns


class Spy:
    """Wraps a function and records what each call returned."""

    def __init__(self, fn):
        self.fn, self.returns = fn, []

    def __call__(self, *args, **kw):
        out = self.fn(*args, **kw)
        self.returns.append(out)
        return out
