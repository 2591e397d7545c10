"""The helper that runs a notebook's own cell: a changed cell changes what the loop-pinning tests see."""
import shutil

import numpy as np
import pytest

import bbtkit as bk
import notebook_cells
from notebook_cells import cell, run_cell
from bbtkit.data.splits import Split
from bbtkit.methods.zo_sgd import run_zo

NB = "08_zeroth_order.ipynb"
LINE = "    opt.tell(X, losses)                                             #"


def test_a_marker_must_name_exactly_one_code_cell():
    with pytest.raises(LookupError, match="0 code cells"):
        cell(NB, "no cell holds this text")
    with pytest.raises(LookupError, match="code cells of .* contain 'import'"):
        cell(NB, "import")


def test_an_edited_notebook_cell_is_what_runs(toy, tmp_path, monkeypatch):
    toy_split = Split("sst2", 0, toy, toy, toy)
    src = (notebook_cells.NOTEBOOKS / NB).read_text()
    assert LINE in src
    (tmp_path / NB).write_text(src.replace(LINE, LINE.replace("losses)", "-losses)")))  # ascends instead
    monkeypatch.setattr(notebook_cells, "NOTEBOOKS", tmp_path)
    lm, task = bk.tiny_model("llama"), bk.get_task("sst2")
    ns = run_cell(NB, "opt.tell(X, -losses)", lm=lm, task=task, split=toy_split, BUDGET=20)
    res = run_zo(lm, task, toy_split, ns["cfg"], display=False, evaluate_test=False)
    assert not np.allclose(ns["plain"], [h["best_loss"] for h in res.history[1:]], rtol=1e-6)
