"""The manual prompt and in-context learning as methods: calibrated like the tuned methods when asked."""
import dataclasses

import pytest
import torch

import bbtkit as bk
from bbtkit.tuning import calibration as calib
from bbtkit.methods.baselines import PromptConfig, run_in_context, run_manual
from bbtkit.data.splits import Split


@pytest.fixture(scope="module")
def setup(toy):
    lm = bk.tiny_model("roberta", layers=2)
    with torch.no_grad():
        lm.model.lm_head.bias += 10.0  # positive label-word logits: champion calibration needs them
    return lm, bk.get_task("sst2"), Split(train=toy, dev=toy, test=toy, task="sst2", seed=42)


@pytest.mark.parametrize("method", ["champion", "contextual"])
def test_manual_prompt_calibrates_as_the_tuned_methods_do(setup, method, tmp_path):
    lm, task, split = setup
    res = run_manual(lm, task, split, PromptConfig(calibration=method))
    cal = calib.for_prompt(method, lm, task, split.train, None)
    assert res.calibration == cal and res.config["calibration"] == method
    assert res.dev_metric == bk.evaluate(lm, task, split.dev, calibration=cal)
    assert res.test_metric == bk.evaluate(lm, task, split.test, calibration=cal)
    assert bk.load_result(res.save(tmp_path / "manual")).calibration == cal
    plain = run_manual(lm, task, split)
    assert plain.calibration is None and plain.test_metric == bk.evaluate(lm, task, split.test)


def test_the_registry_rows_pass_calibration_through(setup):
    lm, task, split = setup
    cfg = dataclasses.replace(bk.get_method("manual").preset("sst2", 42), calibration="champion")
    assert bk.get_method("manual").run(lm, task, split, cfg, display=False).calibration is not None
    res = run_in_context(lm, task, split, PromptConfig(1, calibration="champion"))
    shown = task.with_demonstrations([split.train[1], split.train[0]], lm.family)  # one per class, class 0 first
    assert res.calibration == calib.Calibration.fit(lm, shown, split.train)
    assert res.config["demonstrations_per_class"] == 1


def test_a_wrong_calibration_is_refused_by_name():
    with pytest.raises(ValueError, match=r"PromptConfig: calibration must be one of"):
        PromptConfig(calibration="platt")
