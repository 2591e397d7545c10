"""Calibration formulas on hand-computed logits, and on tiny models."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.tuning.calibration import Calibration, calibrate_batch, content_free_examples


def test_champion_calibration_on_hand_computed_logits():
    q = torch.tensor([[12.0, 8.0], [10.0, 6.0]])  # q̄ = (11, 7), λ = 9
    cal = Calibration.from_logits(q, "champion")
    assert cal.reference == (11.0, 7.0) and cal.scale == 9.0
    torch.testing.assert_close(cal.apply(q), torch.tensor([[9 * 12 / 11, 9 * 8 / 7], [9 * 10 / 11, 9 * 6 / 7]]))
    # the mean sample gets equal logits λ for every label word, at the original logits' mean height
    torch.testing.assert_close(cal.apply(torch.tensor([11.0, 7.0])), torch.tensor([9.0, 9.0]))
    # the first sample was "class 0" before calibration and is "class 1" after: 12/11 < 8/7
    assert cal.apply(q)[0].argmax() == 1


def test_contextual_calibration_on_hand_computed_logits():
    cf = torch.log(torch.tensor([[0.8, 0.2], [0.6, 0.4]]))  # p_cf = (0.7, 0.3)
    cal = Calibration.from_logits(cf, "contextual")
    np.testing.assert_allclose(cal.reference, (0.7, 0.3), rtol=1e-6)
    p = torch.tensor([0.6, 0.4])
    expected = (p / torch.tensor([0.7, 0.3])) / (p / torch.tensor([0.7, 0.3])).sum()
    torch.testing.assert_close(cal.probs(p.log()), expected)


def test_a_calibrated_uniformly_biased_model_predicts_evenly():
    """Logits that favour class 0 by the same amount for every input: calibrated, each class wins
    for about a third of the inputs. Champion fits on the samples; contextual on a content-free
    input, whose logits are the bias alone."""
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(200, 3))
    biased = torch.tensor(10.0 + signal + np.array([3.0, 0.0, 0.0]), dtype=torch.float32)
    assert (biased.argmax(-1) == 0).float().mean() > 0.9
    content_free = torch.tensor([[13.0, 10.0, 10.0]])
    for method, fit_on in (("champion", biased), ("contextual", content_free)):
        cal = Calibration.from_logits(fit_on, method)
        counts = np.bincount(cal.apply(biased).argmax(-1).numpy(), minlength=3)
        assert counts.min() > 200 / 3 * 0.7, (method, counts)


def test_batch_calibration_matches_one_candidate_at_a_time():
    logits = torch.rand(4, 16, 3) * 5 + 5
    batched = calibrate_batch(logits, "champion")
    for c in range(4):
        torch.testing.assert_close(batched[c], Calibration.from_logits(logits[c]).apply(logits[c]))
    negative = -logits  # not calibratable by division: left as it is
    torch.testing.assert_close(calibrate_batch(negative, "champion"), negative)


def test_calibration_errors_say_what_to_do():
    with pytest.raises(ValueError, match="method='contextual'"):
        Calibration.from_logits(torch.tensor([[-1.0, 2.0]]), "champion")
    with pytest.raises(ValueError, match="must be one of"):
        Calibration("platt", (1.0, 1.0))
    with pytest.raises(ValueError, match="for 2 classes"):
        Calibration.from_logits(torch.ones(3, 2)).apply(torch.ones(3))
    with pytest.raises(ValueError, match="training samples"):
        Calibration.fit(bk.tiny_model("llama"), "sst2", bk.Examples([], name="empty"))


def test_fit_on_tiny_models_and_round_trip(toy):
    for arch in ("roberta", "llama"):
        lm = bk.tiny_model(arch)
        cal = Calibration.fit(lm, "sst2", method="contextual")
        assert len(cal.reference) == 2 and abs(sum(cal.reference) - 1) < 1e-5
        assert Calibration.from_dict(cal.to_dict()) == cal
        free = content_free_examples(lm, bk.get_task("sst2"))
        assert len(free) == (3 if arch == "roberta" else 2)  # "N/A", "" and the mask token, where there is one


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = bk.Examples([bk.Example("fun and good", None, 1), bk.Example("awful", None, 0)], name="dev")
    return bk.Split("sst2", 0, toy, dev, toy)


def positive_logit_roberta():
    """A tiny RoBERTa whose label-word logits are all positive, as a real model's are."""
    lm = bk.tiny_model("roberta")
    with torch.no_grad():
        lm.model.lm_head.bias += 10.0
    return lm


@pytest.mark.parametrize("method", ["champion", "contextual"])
@pytest.mark.parametrize("runner", ["bbt", "bbtv2"])
def test_calibrated_runs_save_load_and_reevaluate_identically(method, runner, toy_split, tmp_path):
    lm = positive_logit_roberta() if method == "champion" else bk.tiny_model("llama")
    small = dict(n_prompt_tokens=2, intrinsic_dim=8, popsize=4, budget=17, eval_every=8, calibration=method)
    if runner == "bbt":
        res = bk.run_bbt(lm, "sst2", toy_split, dataclasses.replace(bk.BBTConfig.cpu_quick(seed=1), **small), display=False)
    else:
        res = bk.run_bbtv2(lm, "sst2", toy_split, dataclasses.replace(bk.BBTv2Config.cpu_quick(seed=1), **small),
                           display=False)
    loaded = bk.load_result(res.save(tmp_path / "run"))
    assert loaded.calibration == res.calibration and loaded.calibration.method == method
    again = bk.evaluate(lm, "sst2", toy_split.test, loaded.prompt, position=loaded.position,
                        calibration=loaded.calibration)
    assert again == res.test_metric


def test_champion_calibration_on_a_model_with_negative_logits_fails_before_tuning(toy_split):
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(), popsize=4, budget=8, intrinsic_dim=4, calibration="champion")
    lm = bk.tiny_model("roberta")
    with torch.no_grad():
        lm.model.lm_head.bias -= 10.0
    with pytest.raises(ValueError, match="contextual"):
        bk.run_bbt(lm, "sst2", toy_split, cfg, display=False)
    with pytest.raises(ValueError, match="calibration must be one of"):
        dataclasses.replace(cfg, calibration="platt")
