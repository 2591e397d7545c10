"""The optimizer table reuses another table's run only when it is the very same run: the same config (a field
the run predates at its default), the same test size, and a task without the table's own template."""
import dataclasses

import numpy as np

import bbtkit as bk
from bbtkit.course import leaderboard as lb, optimizer_table as ot


def _saved(folder, cfg, test_size=lb.TEST_SIZE, drop=("optimizer",)):
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in drop}
    bk.Result(method="bbt", task="agnews", model="m", config=config, z=np.zeros((0, 1)), projections=[], n_tokens=0,
              hidden=1, layers=[], num_layers=1, position="auto", test_metric=0.7, dev_metric=0.8,
              extra={"test_size": test_size}).save(folder)


def test_another_tables_identical_run_is_used_and_a_different_one_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(lb, "ROOT", tmp_path / "leaderboard")
    monkeypatch.setattr(ot, "ROOT", tmp_path / "optimizers")
    zo = tmp_path / "zo" / "smollm2-135m_float32_test500_scale0.0375"
    _saved(zo / "bbt" / "agnews-13", dataclasses.replace(bk.BBTConfig.cpu_quick(13), budget=300))       # the same run
    _saved(zo / "bbt" / "agnews-42", dataclasses.replace(bk.BBTConfig.cpu_quick(42), budget=400))       # another budget
    _saved(tmp_path / "zo" / "smollm2-135m_float32_test200_scale0.0375" / "bbt" / "agnews-100",
           dataclasses.replace(bk.BBTConfig.cpu_quick(100), budget=300), test_size=200)      # another test size
    from bbtkit.methods.random_search import RandomSearchConfig
    _saved(zo / "random" / "agnews-13", dataclasses.replace(RandomSearchConfig.cpu_quick(13), budget=300))
    _saved(zo / "bbt" / "sst2-13", dataclasses.replace(bk.BBTConfig.cpu_quick(13), budget=300))       # another template
    own = ot.ROOT / ot.CPU_SETTING
    assert ot.path("cma", "agnews", 13) == zo / "bbt" / "agnews-13"
    assert ot.path("random", "agnews", 13) == zo / "random" / "agnews-13"
    assert ot.path("cma", "agnews", 42) == own / "cma" / "agnews-42"
    assert ot.path("cma", "agnews", 100) == own / "cma" / "agnews-100"
    assert ot.path("cma", "sst2", 13) == own / "cma" / "sst2-13"
    assert ot.path("DE", "agnews", 13) == own / "DE" / "agnews-13"  # no other table runs DE
    at400 = ot.CPU_SETTING.replace("calls300", "calls400")  # another budget's cell: the 300-call run is not it
    assert ot.path("cma", "agnews", 13, at400) == ot.ROOT / at400 / "cma" / "agnews-13"
    assert ot.load_table(optimizers=("cma", "random"), tasks=("agnews",), seeds=(13,))["cma"]["agnews"]["seeds"] == 1
