"""bbtkit.tuning.objectives: the losses a method minimises, checked against their formulas, and the dev score."""
import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.tuning.objectives import HINGE_MARGIN, DevScore, Loss, candidate_losses
from bbtkit.api.blackbox import APIOutput

TASK = bk.get_task("sst2")


def logits_and_labels():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 6, 2, generator=g), torch.tensor([0, 1, 1, 0, 1, 0])


def test_cross_entropy_and_train_accuracy_per_candidate():
    logits, labels = logits_and_labels()
    losses, acc = candidate_losses(logits, labels, "ce", TASK)
    for i in range(3):
        logp = torch.log_softmax(logits[i], -1)
        assert losses[i] == pytest.approx(-logp[torch.arange(6), labels].mean().item(), rel=1e-6)
        assert acc[i] == pytest.approx((logits[i].argmax(-1) == labels).float().mean().item())


def test_hinge_charges_each_wrong_class_within_the_margin_of_the_gold_one():
    logits = torch.tensor([[[3.0, 0.0], [0.5, 0.0], [0.0, 1.0]]])  # margins 3, 0.5, -1 for gold 0, 0, 0
    losses, _ = candidate_losses(logits, torch.tensor([0, 0, 0]), "hinge", TASK)
    assert losses[0] == pytest.approx((0 + (HINGE_MARGIN - 0.5) + (HINGE_MARGIN + 1)) / 3)


def test_neg_metric_is_minus_the_train_metric_and_lower_is_better():
    logits, labels = logits_and_labels()
    losses, acc = candidate_losses(logits, labels, "neg_metric", TASK)
    np.testing.assert_array_equal(losses, -acc)
    perfect = torch.nn.functional.one_hot(labels, 2).float()[None] * 5
    assert candidate_losses(perfect, labels, "ce", TASK)[0][0] < candidate_losses(logits, labels, "ce", TASK)[0].min()


def test_a_loss_applies_its_calibration_first_and_refuses_unknown_losses():
    logits, labels = logits_and_labels()
    out = APIOutput(logits=logits, labels=labels)
    shift = torch.tensor([0.0, 2.0])
    np.testing.assert_allclose(Loss(TASK, "ce", calibrate=lambda q: q + shift)(out)[0],
                               candidate_losses(logits + shift, labels, "ce", TASK)[0])
    with pytest.raises(ValueError, match="loss must be one of"):
        Loss(TASK, "mse")
    with pytest.raises(ValueError, match="loss must be one of"):
        candidate_losses(logits, labels, "mse", TASK)


def test_the_dev_score_is_the_dev_metric_of_the_prompt_z_stands_for(toy):
    from bbtkit.tuning.projection import Projection
    from bbtkit.tuning.spaces import ShallowPrompt

    lm = bk.tiny_model("llama")
    api = bk.BlackBoxLM(lm, TASK, toy)
    space = ShallowPrompt(Projection(d=4, out_dim=2 * lm.hidden_size, seed=0, kind="normal", std=0.1), 2,
                          lm.hidden_size)
    score = DevScore(space, api, TASK, lm, toy, None, api.position)
    z = np.array([1.0, -2.0, 0.5, 3.0])
    assert score(z) == bk.evaluate(lm, TASK, toy, space.prompt(z), position=api.position)
    assert api.calls == 1 and api.budget is None  # one call of the dev API, which has no budget: model selection


def spaces_of_every_kind(lm, api):
    """A space of each kind a method tunes, built as the methods build them: shallow, deep, adapters, per-example."""
    from bbtkit.methods import dfo_lora, ipl
    from bbtkit.tuning.projection import Projection
    from bbtkit.tuning.spaces import DeepPrompt, ShallowPrompt

    H, L = lm.hidden_size, lm.num_layers
    proj = [Projection(d=3, out_dim=2 * H, seed=s, kind="normal", std=0.5) for s in range(2)]
    return {"shallow": ShallowPrompt(proj[0], 2, H),
            "deep": DeepPrompt(proj, [0, L - 1], L, 2, H),
            "adapters": dfo_lora.make_space(dfo_lora.DFOLoRAConfig.cpu_quick(), api, [0, L - 1]),
            "per-example": ipl.make_space(ipl.IPLConfig.cpu_quick(), api)}


@pytest.mark.parametrize("kind", ["shallow", "deep", "adapters", "per-example"])
def test_one_dev_scorer_serves_every_space_through_what_the_space_asks(toy, kind):
    lm = bk.tiny_model("llama")
    api = bk.BlackBoxLM(lm, TASK, toy)
    space = spaces_of_every_kind(lm, api)[kind]
    rng = np.random.default_rng(0)
    blocks = {"deep": (2,), "adapters": (2,)}.get(kind, ())  # one z per prompted or adapted layer
    X = rng.normal(scale=2.0, size=(3, *blocks, space.dim))
    pop = space.ask(api, X).logits
    assert pop.shape == (3, len(toy), 2) and api.calls == 3
    assert not torch.allclose(pop[0], pop[1])  # the vectors reach the model
    for i in range(3):  # one vector asks exactly what it asks inside a population
        assert torch.allclose(space.ask_point(api, X[i]).logits[0], pop[i], atol=1e-5)
    score = DevScore(space, api, TASK, lm, toy, None, api.position)
    for i in range(3):
        assert score(X[i]) == TASK.score(pop[i].argmax(-1).numpy(), api.labels.numpy())
