"""The runs that chapters 03-06 load (runs/chapters/, made by benchmarks/chapter_runs.py) are the runs their
cells ask for, and the numbers the committed notebooks print are those files' numbers, not retyped ones."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

import bbtkit as bk
from bbtkit.course.shared_runs import differs, fingerprint

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "runs" / "chapters"


def _benchmark():
    spec = importlib.util.spec_from_file_location("chapter_runs", ROOT / "benchmarks" / "chapter_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Embedded:
    """What a fingerprint reads of the embedded model in fp32, without loading its weights."""
    name, family, num_layers, hidden_size = "smollm2-135m", "causal", 30, 576
    dtype = "torch.float32"


def _outputs(notebook: str, marker: str) -> str:
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(cells) == 1, f"{notebook}: one cell holds {marker!r}"
    return "".join("".join(o.get("text", "")) for o in cells[0]["outputs"])


def test_every_shared_run_is_the_one_its_benchmark_and_notebook_ask_for():
    bench = _benchmark()
    wanted = {folder: (run, task, split, cfg) for _, task, run, split, cfg, folder in bench.runs(_Embedded, None)}
    saved = {str(p.parent.relative_to(SHARED)) for p in SHARED.rglob("result.json") if "local" not in p.parts}
    assert saved == set(wanted), "runs/chapters holds exactly the benchmark's runs: run the benchmark"
    for folder, (run, task, split, cfg) in wanted.items():
        res = bk.load_result(SHARED / folder)
        assert differs(res, fingerprint(run, _Embedded, task, split, cfg), cfg) is None, folder
        assert res.manual_test is not None and res.test_size == len(split.test)


def test_the_notebooks_print_the_shared_runs_numbers():
    res = bk.load_result(SHARED / "bbt-overall-sst2-42")
    out = _outputs("03_black_box_tuning.ipynb", 'SHARED / "bbt-overall-sst2-42"')
    assert "Loaded" in out and f"test {res.test_metric:.3f}" in out and f"z = 0): test {res.manual_test:.3f}" in out
    v2 = bk.load_result(SHARED / "bbtv2-overall-sst2-42")
    out = _outputs("04_bbtv2_deep_prompts.ipynb", 'SHARED / "bbtv2-overall-sst2-42"')
    assert "Loaded" in out and f"test {v2.test_metric:.3f}" in out and f"BBT, same budget (notebook 03):       test {res.test_metric:.3f}" in out
    out = _outputs("05_calibration.ipynb", "bbt-champion-overall-sst2-42")
    champion = bk.load_result(SHARED / "bbt-champion-overall-sst2-42")
    assert f"{'BBT + champion calibration':27s} test {champion.test_metric:.1%}" in out
    assert f"{'BBT':27s} test {res.test_metric:.1%}" in out
    out = _outputs("06_ajo.ipynb", 'SHARED / "ajo-overall-sst2-42"')
    ajo = bk.load_result(SHARED / "ajo-overall-sst2-42")
    assert "Loaded" in out and ajo.summary() in out


def test_notebook_03s_sweep_table_is_the_saved_sweep():
    bench = _benchmark()
    out = _outputs("03_black_box_tuning.ipynb", "def sweep(")
    cfg = bk.BBTConfig.cpu_quick(seed=42)
    printed = dict(re.findall(r"(\S+): (dev [\d.]+ test [\d.]+)", out))
    groups = bench.sweep_changes()
    assert set(printed) == {label for g in groups.values() for label in g}
    for group in groups.values():
        for label, change in group.items():
            r = bk.load_result(SHARED / "bbt-sweep" / bench.sweep_name(cfg, change))
            assert printed[label] == f"dev {r.dev_metric:.3f} test {r.test_metric:.3f}", label


@pytest.mark.parametrize("notebook", ["03_black_box_tuning.ipynb", "04_bbtv2_deep_prompts.ipynb",
                                      "05_calibration.ipynb", "06_ajo.ipynb"])
def test_a_notebook_that_loads_a_run_says_which_command_made_it(notebook):
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "benchmarks/chapter_runs.py" in text and "fresh=True" in text
