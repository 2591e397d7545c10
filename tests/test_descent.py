"""bbtkit.tuning.descent: the one gradient loop of the gradient baselines (Feature-MLP, MeZO's Adam, gradient IPL)."""
import pytest
import torch

from bbtkit.tuning.descent import descend


def test_the_gradient_loop_scores_every_k_steps_and_at_the_last_and_keeps_the_strictly_best_copy():
    w = torch.zeros(1, requires_grad=True)
    adam = torch.optim.SGD([w], lr=0.25)  # w_k = 1 - 0.5^k
    target = [1.0]
    dev_scores = iter([0.5, 0.75, 0.75, 0.25])  # steps 2, 4, 6 (a tie: not kept) and 7 (the last)

    def step(i):
        loss = (w - target[0]).pow(2).sum()
        adam.zero_grad()
        loss.backward()
        adam.step()
        return {"calls": i, "best_loss": float(loss.detach())}

    def score():
        assert not torch.is_grad_enabled()  # the dev set is scored without gradients
        return next(dev_scores)

    found = descend(step, 7, score=score, snapshot=lambda: w.detach().clone(), eval_every=2)
    assert [h["dev_metric"] for h in found.history] == [None, 0.5, None, 0.75, None, 0.75, 0.25]
    assert [h["calls"] for h in found.history] == list(range(1, 8))
    assert found.best_dev == 0.75 and found.best_step == 4
    assert found.best.item() == pytest.approx(1 - 0.5 ** 4)  # the copy taken at step 4, not w at the end
    assert w.item() == pytest.approx(1 - 0.5 ** 7)
    assert found.history[0]["best_loss"] == 1.0


def test_the_gradient_loop_refuses_no_steps():
    with pytest.raises(ValueError, match="steps >= 1"):
        descend(lambda i: {}, 0, score=lambda: 0.0, snapshot=lambda: None)
