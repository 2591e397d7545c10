"""run_or_load: a shared run loads only when it is the same run, and a variation never overwrites it."""
import dataclasses

import pytest

import bbtkit as bk
from bbtkit.data.splits import Split
from bbtkit.course.shared_runs import LOCAL, differs, fingerprint


@pytest.fixture(scope="module")
def setup(toy):
    lm = bk.tiny_model("llama", layers=2)
    task = bk.get_task("sst2")
    split = Split(train=toy, dev=toy, test=toy, task="sst2", seed=42)
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=42), budget=20, popsize=5, eval_every=10, intrinsic_dim=5)
    return lm, task, split, cfg


class Counting:
    """run_bbt, counting how often it really runs."""
    __name__ = "run_bbt"

    def __init__(self):
        self.runs = 0

    def __call__(self, *a, **kw):
        self.runs += 1
        return bk.run_bbt(*a, **kw)


def test_the_same_run_loads_and_equals_what_was_computed(setup, tmp_path, capsys):
    lm, task, split, cfg = setup
    run = Counting()
    first = bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False)
    assert run.runs == 1 and (tmp_path / "bbt" / "result.json").exists()
    assert first.manual_test == bk.evaluate(lm, task, split.test)
    again = bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False, made_by="a test")
    assert run.runs == 1, "the same run must load, not run again"
    assert "Loaded" in capsys.readouterr().out
    assert again.test_metric == first.test_metric and (again.z == first.z).all()
    assert bk.evaluate(lm, task, split.test, again.prompt, position=again.position) == first.test_metric


@pytest.mark.parametrize("change", ["config", "task", "split", "model", "run"])
def test_another_run_is_computed_and_saved_beside_the_shared_one(setup, tmp_path, change):
    lm, task, split, cfg = setup
    run = Counting()
    shared = bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False)
    if change == "config":
        cfg = dataclasses.replace(cfg, sigma=0.5)
    elif change == "task":
        task = task.with_template("{text_a} It was {mask}", lm.family, ("bad", "great"))
    elif change == "split":
        split = dataclasses.replace(split, test=bk.Examples(list(split.test)[:3], name="toy3"))
    elif change == "model":
        lm = bk.tiny_model("llama", layers=1)
    else:
        run.__name__ = "run_other"
    assert differs(shared, fingerprint(run, lm, task, split, cfg)) is not None
    other = bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False)
    assert run.runs == 2
    assert bk.load_result(tmp_path / "bbt").test_metric == shared.test_metric  # the shared run is untouched
    assert list((tmp_path / LOCAL).iterdir()), "the variation is saved under local/"
    bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False)
    assert run.runs == 2, "a repeated variation loads from local/"
    assert other.extra["fingerprint"] != shared.extra["fingerprint"]


def test_fresh_runs_again_and_replaces(setup, tmp_path):
    lm, task, split, cfg = setup
    run = Counting()
    bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False)
    res = bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False, fresh=True)
    assert run.runs == 2 and bk.load_result(tmp_path / "bbt").extra["fingerprint"] == res.extra["fingerprint"]


def test_a_result_without_a_fingerprint_is_not_trusted(setup, tmp_path):
    lm, task, split, cfg = setup
    res = bk.run_bbt(lm, task, split, cfg, display=False)
    res.save(tmp_path / "bbt")
    run = Counting()
    bk.run_or_load(run, lm, task, split, cfg, tmp_path / "bbt", display=False)
    assert run.runs == 1
