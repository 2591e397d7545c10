"""The leaderboard's cache: each cell runs once, is saved, and loads into the table."""
import pytest

import bbtkit as bk
from bbtkit import leaderboard as lb


def test_budgets_keep_the_reports_ratio():
    assert lb.budget("sst2", 1.0) == 3000 and lb.budget("qqp", 1.0) == 8000
    assert lb.budget("sst2") == 300 and lb.budget("snli") == 800
    assert lb.config("bbtv2_cal", "sst2", 13).calibration == "champion"
    assert lb.config("bbtv2", "qnli", 42).calibration is None and lb.config("manual", "sst2", 13) is None
    assert lb.config("ajo", "dbpedia", 100, scale=1.0) == bk.AJOConfig.paper("dbpedia", seed=100)


def test_entries_are_cached_and_tabled(tmp_path):
    lm = bk.tiny_model("llama", layers=2)
    kw = dict(scale=0.01, test_size=16, root=tmp_path)
    for method in ("manual", "in_context", "bbtv2"):
        for seed in (13, 42):
            res = lb.run_entry(lm, method, "sst2", seed, **kw)
            assert (tmp_path / method / f"sst2-{seed}" / "result.json").exists()
            assert res.api_calls <= lb.budget("sst2", 0.01)
    again = lb.run_entry(lm, "bbtv2", "sst2", 13, **kw)  # from the cache: same numbers, no run
    assert again.test_metric == bk.load_result(tmp_path / "bbtv2" / "sst2-13").test_metric
    table = bk.load_leaderboard(tmp_path)
    assert set(table) == {"manual", "in_context", "bbtv2"} and set(table["bbtv2"]) == {"sst2"}
    stats = bk.load_leaderboard(tmp_path, stats=True)["manual"]["sst2"]
    assert stats["seeds"] == 2 and stats["calls"] == 0
    # speed-up against itself: every seed reaches its own best dev after the same number of calls
    pairs = lb.speedup(tmp_path, "bbtv2", "bbtv2", "sst2")
    assert len(pairs) == 2 and all(a == b and a is not None for a, b in pairs)
    assert lb.speedup(tmp_path, "ajo", "bbtv2", "sst2") == []  # no AJO runs cached: no pairs
    # calls to a dev target set per seed by another row: a run reaches its own dev metric
    assert len(lb.calls_to_target(tmp_path, "bbtv2", "sst2", above="bbtv2", margin=0.0)) == 2
    assert None not in lb.calls_to_target(tmp_path, "bbtv2", "sst2", above="bbtv2", margin=0.0)
    assert lb.calls_to_target(tmp_path, "bbtv2", "sst2", above="ajo") == []
    with pytest.raises(ValueError, match="leaderboard's methods"):
        lb.run_entry(lm, "lora", "sst2", 13, **kw)


def test_demonstrations_take_one_example_per_class():
    split = bk.load_split("snli", seed=13)
    demos = lb.demonstrations(split)
    assert [d.label for d in demos] == [0, 1, 2]
