"""bbtkit.tuning.results: a Result rebuilds its prompt from z and seeds, saves atomically and loads back exactly,
and a damaged or mismatched folder is refused with a sentence."""
import json

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.tuning.projection import Projection
from bbtkit.tuning.result_builder import ResultFileError, TaskMismatchWarning, load_result
from bbtkit.tuning.results import Result, calls_to_reach

N, H, D = 2, 3, 4


def result(layers=(0,), method="bbt", extra=None, **kw):
    projs = [Projection(d=D, out_dim=N * H, seed=10 + i, kind="normal", std=0.2) for i in range(len(layers))]
    z = np.random.default_rng(0).normal(size=(len(layers), D))
    return Result(method=method, task=bk.get_task("sst2"), model="tiny-llama", config={"seed": 1}, z=z,
                  projections=projs, n_tokens=N, hidden=H, layers=list(layers), num_layers=4, position="after",
                  history=[{"calls": 10, "dev_metric": 0.5}, {"calls": 20, "dev_metric": 0.75}], dev_metric=0.75,
                  test_metric=0.7, api_calls=20,
                  extra={"space": "shallow" if len(layers) == 1 else "deep"} if extra is None else extra, **kw)


def test_the_prompt_is_rebuilt_from_z_and_the_projection_seeds():
    shallow, deep = result(), result(layers=(1, 3), method="bbtv2")
    assert torch.allclose(shallow.prompt, shallow.projections[0](shallow.z[0]).view(N, H))
    p = deep.prompt
    assert p.shape == (4, N, H) and not p[[0, 2]].any()
    assert torch.allclose(p[3], deep.projections[1](deep.z[1]).view(N, H))


@pytest.mark.parametrize("layers", [(0,), (1, 3)])
def test_a_saved_result_loads_back_exactly(tmp_path, layers):
    res = result(layers=layers, method="bbt" if layers == (0,) else "bbtv2")
    again = load_result(res.save(tmp_path / "r"))
    assert np.array_equal(again.z, res.z) and again.projections == res.projections
    assert torch.equal(again.prompt, res.prompt)
    for name in ("history", "dev_metric", "test_metric", "api_calls", "config", "extra", "task_spec", "layers"):
        assert getattr(again, name) == getattr(res, name), name
    assert again.task_definition == bk.get_task("sst2")


def test_saving_never_replaces_silently_and_leaves_no_temporary_folder(tmp_path):
    res = result()
    res.save(tmp_path / "r")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        res.save(tmp_path / "r")
    res.test_metric = 0.9
    res.save(tmp_path / "r", overwrite=True)
    assert load_result(tmp_path / "r").test_metric == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_damaged_or_mismatched_folder_is_refused(tmp_path):
    a, b = result().save(tmp_path / "a"), result(layers=(1, 3), method="bbtv2").save(tmp_path / "b")
    meta = json.loads((a / "result.json").read_text())
    meta["test_metric"] = 0.99
    (a / "result.json").write_text(json.dumps(meta))
    with pytest.raises(ResultFileError, match="was edited after it was saved"):
        load_result(a)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "result.json").write_text((b / "result.json").read_text())
    (tmp_path / "c" / "z.npz").write_bytes((result().save(tmp_path / "d") / "z.npz").read_bytes())
    with pytest.raises(ResultFileError, match="come from different runs"):
        load_result(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="No saved result"):
        load_result(tmp_path / "nothing")


def test_loading_for_another_template_warns(tmp_path):
    path = result().save(tmp_path / "r")
    other = bk.get_task("sst2").with_template("{text_a} So it was {mask}", "causal", ("bad", "good"))
    with pytest.warns(TaskMismatchWarning, match="different definition"):
        load_result(path, task=other)


def test_calls_to_reach_a_dev_target():
    h = result().history
    assert calls_to_reach(h, 0.6) == 20 and calls_to_reach(h, 0.5) == 10 and calls_to_reach(h, 0.8) is None


def test_the_space_not_the_method_name_says_whether_a_prompt_is_shallow():
    legacy = result(method="random", extra={})  # saved before runs recorded their space: layer 0 alone is shallow
    assert legacy.prompt.shape == (N, H)
    deep_at_0 = result(method="bbt", extra={"space": "deep"})  # a deep prompt tuned at layer 0 only stays deep
    assert deep_at_0.prompt.shape == (4, N, H) and torch.equal(deep_at_0.prompt[0], legacy.prompt)


def test_one_module_constructs_a_Result():
    """Every run's Result comes from build_result, and a saved one from load_result, both in one module."""
    import ast
    from pathlib import Path

    root = Path(bk.__file__).parent
    makers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                    if any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Result"
                           for n in ast.walk(ast.parse(p.read_text()))))
    assert makers == ["tuning/result_builder.py"]
