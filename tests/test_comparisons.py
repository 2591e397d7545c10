"""bbtkit.course.comparisons: the side-by-side tables of chapters 08-11, from cached runs, labelled by the registry."""
import bbtkit as bk
from bbtkit.course import comparisons as cmp
from bbtkit.course import leaderboard as lb


def test_compare_runs_missing_cells_once_then_loads_them_by_seed(tmp_path):
    lm = bk.tiny_model("llama", layers=2)
    made = cmp.compare(lm, ["manual", "random"], tasks=("sst2",), runs=tmp_path, own="mine", calls=20, recompute=True)
    assert list(made["sst2"]) == [bk.METHODS["manual"].label, bk.METHODS["random"].label]
    rand = made["sst2"]["Random search"]
    assert [r.config["seed"] for r in rand] == list(lb.SEEDS) and all(r.api_calls <= 20 for r in rand)
    assert (tmp_path / "leaderboard").is_dir() and not (tmp_path / "mine").exists()  # sst2 is a leaderboard task
    again = cmp.compare(lm, ["manual", "random"], tasks=("sst2",), runs=tmp_path, own="mine", calls=20)
    assert [r.z.tolist() for r in again["sst2"]["Random search"]] == [r.z.tolist() for r in rand]
    text = cmp.table(again, lambda rs: f"{rs[0].api_calls} calls", "calls")
    lines = text.splitlines()
    assert "sst2" in lines[0] and "test mean ± std | calls" in lines[1]
    tests = [100 * r.test_metric for r in rand]
    assert lines[3].startswith("Random search") and f"{sum(tests) / 3:5.1f} ±" in lines[3] and "(3 seeds)" in lines[3]


def test_a_cell_without_runs_says_so_and_seeds_sort_as_numbers(tmp_path):
    assert "(no cached runs)" in cmp.table({"agnews": {"BBT": []}})
    assert cmp.folder(tmp_path, "agnews", "zo") == tmp_path / "zo"
    assert cmp.by_seed({"sst2-100": "c", "sst2-13": "a", "sst2-42": "b"}) == ["a", "b", "c"]
    assert cmp.spread([type("R", (), {"test_metric": 0.5})()]) == " 50.0 ± 0.0 (1 seed)"
