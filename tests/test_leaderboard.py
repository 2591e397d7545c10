"""The leaderboard's cache: each cell runs once, is saved, and loads into the table."""
import numpy as np
import pytest

import bbtkit as bk
from bbtkit.course import leaderboard as lb


def test_budgets_keep_the_reports_ratio():
    assert lb.budget("sst2", 1.0) == 3000 and lb.budget("qqp", 1.0) == 8000
    assert lb.budget("sst2") == 300 and lb.budget("snli") == 800
    assert lb.config("bbtv2_cal", "sst2", 13).calibration == "champion"
    assert lb.config("bbtv2", "qnli", 42).calibration is None and lb.config("manual", "sst2", 13).demonstrations_per_class == 0
    assert lb.config("in_context", "sst2", 13).demonstrations_per_class == 1
    assert lb.config("ajo", "dbpedia", 100, scale=1.0) == bk.AJOConfig.paper("dbpedia", seed=100)


def test_entries_are_cached_and_tabled(tmp_path):
    lm = bk.tiny_model("llama", layers=2)
    kw = dict(scale=0.01, test_size=16, root=tmp_path)
    for method in ("manual", "in_context", "bbtv2"):
        for seed in (13, 42):
            res = lb.run_entry(lm, method, "sst2", seed, **kw)
            assert (tmp_path / lb.setting(lm, 0.01, 16) / method / f"sst2-{seed}" / "result.json").exists()
            assert res.api_calls <= lb.budget("sst2", 0.01)
    again = lb.run_entry(lm, "bbtv2", "sst2", 13, **kw)  # from the cache: same numbers, no run
    assert again.test_metric == bk.load_result(tmp_path / lb.setting(lm, 0.01, 16) / "bbtv2" / "sst2-13").test_metric
    table = bk.load_leaderboard(tmp_path)
    assert set(table) == {"manual", "in_context", "bbtv2"} and set(table["bbtv2"]) == {"sst2"}
    stats = bk.load_leaderboard(tmp_path, stats=True)["manual"]["sst2"]
    assert stats["seeds"] == 2 and stats["calls"] == 0
    with pytest.raises(ValueError, match="leaderboard's methods"):
        lb.run_entry(lm, "lora", "sst2", 13, **kw)


def _cached(root, method, seed, devs):
    """A cached run whose dev metric was devs[calls] at those calls."""
    res = bk.Result(method=method, task="sst2", model="m", config={}, z=np.zeros((0, 1)), projections=[],
                    n_tokens=0, hidden=1, layers=[], num_layers=1, position="auto",
                    history=[{"calls": c, "dev_metric": d} for c, d in devs.items()],
                    dev_metric=max(devs.values()) if devs else None, test_metric=0.5)
    res.save(root / "hand" / method / f"sst2-{seed}")
    (root / "hand" / lb.SETTING_FILE).write_text("{}")


def test_speedup_and_calls_to_target_on_hand_written_histories(tmp_path):
    _cached(tmp_path, "bbtv2", 13, {0: 0.5, 20: 0.7, 40: 0.8, 60: 0.8})   # its best dev, 0.8, first at 40
    _cached(tmp_path, "ajo", 13, {0: 0.5, 10: 0.8, 30: 0.9})              # 0.8 at 10
    _cached(tmp_path, "bbtv2", 42, {0: 0.6, 20: 0.9})                     # its best, 0.9, at 20
    _cached(tmp_path, "ajo", 42, {0: 0.6, 20: 0.85})                      # never 0.9
    _cached(tmp_path, "manual", 13, {0: 0.6})
    _cached(tmp_path, "manual", 42, {0: 0.5})
    assert lb.speedup(tmp_path, "ajo", "bbtv2", "sst2") == [(40, 10), (20, None)]
    assert lb.speedup(tmp_path, "ajo", "bbt", "sst2") == []  # no BBT runs cached: no pairs
    # the target is the other row's dev metric on the same seed plus the margin (at most 1.0)
    assert lb.calls_to_target(tmp_path, "ajo", "sst2", above="manual", margin=0.05) == [10, 0]
    assert lb.calls_to_target(tmp_path, "bbtv2", "sst2", above="manual", margin=0.25) == [None, 20]
    assert lb.calls_to_target(tmp_path, "ajo", "sst2", above="manual", margin=0.5) == [None, None]


def test_demonstrations_take_one_example_per_class():
    split = bk.load_split("snli", seed=13)
    demos = lb.demonstrations(split)
    assert [d.label for d in demos] == [0, 1, 2]


def test_the_cache_knows_its_model(tmp_path):
    """Two models on the same cell are two results, each in its own setting's folder (the cache key
    once ignored the model, and the second model got the first one's result)."""
    kw = dict(scale=0.01, test_size=16, root=tmp_path)
    llama, gpt2 = bk.tiny_model("llama"), bk.tiny_model("gpt2")
    a = lb.run_entry(llama, "manual", "sst2", 13, **kw)
    b = lb.run_entry(gpt2, "manual", "sst2", 13, **kw)
    assert (a.model, b.model) == ("tiny-llama", "tiny-gpt2")
    assert lb.setting(llama, 0.01, 16) == "tiny-llama_float32_test16_scale0.01"
    assert lb.settings(tmp_path) == sorted([lb.setting(llama, 0.01, 16), lb.setting(gpt2, 0.01, 16)])
    assert lb.run_entry(gpt2, "manual", "sst2", 13, **kw).model == "tiny-gpt2"  # cached, still its own
    assert lb.setting(llama, 0.02, 16) != lb.setting(llama, 0.01, 16) != lb.setting(llama, 0.01, None)
    with pytest.raises(ValueError, match="several settings"):
        bk.load_leaderboard(tmp_path)
    assert bk.load_leaderboard(tmp_path, setting=lb.setting(gpt2, 0.01, 16))["manual"]["sst2"] == b.test_metric


def test_hub_names_and_paths_become_safe_folder_names():
    lm = bk.tiny_model("llama")
    lm.name = "../../FacebookAI/roberta-large"
    key = lb.setting(lm)
    assert "/" not in key and ".." not in key and key.startswith("FacebookAI-roberta-large-")


@pytest.mark.parametrize("seed", ["../../data", "13", 13.0, True, None])
def test_seeds_must_be_integers(tmp_path, seed):
    """A seed string with ".." once wrote files outside the cache root."""
    with pytest.raises(ValueError, match="seed must be an integer"):
        lb.run_entry(bk.tiny_model("llama"), "manual", "sst2", seed, root=tmp_path)
    with pytest.raises(ValueError, match="seed must be an integer"):
        bk.load_split("sst2", seed=seed)
    assert not any(tmp_path.iterdir())


def test_the_composite_score_by_hand_flips_a_ranking_that_a_whole_budget_buys_too_little(tmp_path):
    def cell(method, seed, test, calls):
        res = bk.Result(method=method, task="sst2", model="m", config={}, z=np.zeros((0, 1)), projections=[],
                        n_tokens=0, hidden=1, layers=[], num_layers=1, position="auto",
                        history=[{"calls": calls, "best_loss": 0.5}], dev_metric=0.8, test_metric=test,
                        api_calls=calls, extra={"scale": 0.1})
        res.save(tmp_path / "hand" / method / f"sst2-{seed}")
    (tmp_path / "hand" / lb.SETTING_FILE).parent.mkdir(parents=True)
    (tmp_path / "hand" / lb.SETTING_FILE).write_text("{}")
    cell("manual", 13, 0.78, 0)
    cell("manual", 42, 0.80, 0)
    cell("bbt", 13, 0.82, 300)   # the whole budget (300 calls on SST-2 at scale 0.1): 0.82 - 0.05 = 0.77
    cell("bbt", 42, 0.80, 150)   # half of it: 0.80 - 0.025 = 0.775
    plain, scored = bk.load_leaderboard(tmp_path), lb.load_composite(tmp_path)
    assert plain["bbt"]["sst2"] == pytest.approx(0.81) and plain["manual"]["sst2"] == pytest.approx(0.79)
    assert scored["bbt"]["sst2"] == pytest.approx((0.77 + 0.775) / 2) and scored["manual"]["sst2"] == pytest.approx(0.79)
    free = lb.load_composite(tmp_path, weight=0.0)  # no price on calls: the plain table
    assert {m: r["sst2"] for m, r in free.items()} == pytest.approx({m: r["sst2"] for m, r in plain.items()})
    assert lb.composite(0.9, 800, 800, weight=0.1) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="positive budget"):
        lb.composite(0.9, 10, 0)
