"""The loop's selection rule on hand-made histories: which z a run returns, given the dev scores it met."""
import math

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.tuning.selection import Selection, standard_error


class Script:
    """An optimizer that proposes z = 1, 2, 3, ... (one candidate a generation) from the start z = 0."""

    popsize = 1

    def __init__(self, steps: int):
        self.steps, self.k = steps, 0
        self.start = np.zeros(1)
        self.selected = self.start

    def ask(self):
        return np.array([[self.k + 1.0]])

    def tell(self, X, losses):
        self.k += 1
        self.selected = np.asarray(X[0], dtype=float)

    def stop(self):
        return {"done": self.steps} if self.k >= self.steps else {}

    def info(self):
        return {}

    def final(self):
        return self.selected


class Dev:
    """Dev scores by z (z = 0 is the start), read on n examples (what ``dev.api.examples`` tells the loop)."""

    def __init__(self, scores, n: int | None = 32):
        self.scores = scores
        if n is not None:
            self.api = type("API", (), {"examples": [None] * n})()

    def __call__(self, z):
        return self.scores[int(np.asarray(z).ravel()[0])]


def run(scores, select_se, n=32):
    return bk.tune(lambda X: np.zeros(len(X)), Script(len(scores) - 1), budget=100, dev=Dev(scores, n),
                   eval_every=1, select_se=select_se)


# SST-2's dev set: 32 examples; the start gets 22 right (68.75%), one standard error is 8.2 points
START = 22 / 32


def test_standard_error_is_the_binomials():
    assert standard_error(START, 32) == pytest.approx(math.sqrt(START * (1 - START) / 32))
    assert standard_error(START, 32) == pytest.approx(0.0819, abs=1e-4)
    assert standard_error(1.0, 32) == 0.0 and standard_error(0.5, 0) == 0.0


def test_strict_rule_returns_a_tuned_z_that_won_by_one_example_and_says_it_is_within_the_noise():
    trace = run([START, 23 / 32, 24 / 32, 22 / 32], select_se=0)
    assert trace.best_z.tolist() == [2.0] and trace.best_dev == 24 / 32
    sel = trace.selection
    assert sel["kept_start"] is False and sel["gain"] == pytest.approx(2 / 32) and sel["n_dev"] == 32
    assert "within one standard error" in sel["note"]


def test_one_standard_error_keeps_the_start_when_no_z_beats_it_by_more():
    trace = run([START, 23 / 32, 24 / 32, 22 / 32], select_se=1)
    assert trace.best_z.tolist() == [0.0] and trace.best_dev == START
    assert trace.selection["kept_start"] is True and "note" not in trace.selection


def test_one_standard_error_takes_a_clear_gain_and_then_the_best_after_it():
    # 25/32 is 9.4 points over the start (> 8.2): kept; 27/32 beats it; 26/32 does not
    trace = run([START, 24 / 32, 25 / 32, 27 / 32, 26 / 32], select_se=1)
    assert trace.best_z.tolist() == [3.0] and trace.best_dev == 27 / 32
    assert trace.selection["kept_start"] is False and "note" not in trace.selection
    assert [h["dev_metric"] for h in trace.history] == [START, 24 / 32, 25 / 32, 27 / 32, 26 / 32]


def test_a_tie_with_the_start_keeps_the_start_under_either_rule():
    for k in (0, 1):
        trace = run([START, START, 21 / 32], select_se=k)
        assert trace.best_z.tolist() == [0.0] and trace.selection["kept_start"] is True


def test_without_a_dev_size_the_margin_is_zero_and_the_rule_is_strict():
    trace = run([START, 23 / 32], select_se=1, n=None)
    assert trace.best_z.tolist() == [1.0] and trace.selection["n_dev"] == 0 and "note" not in trace.selection


def test_a_larger_dev_set_makes_a_smaller_gain_count():
    # the same 3.1-point gain: within the noise of 32 examples, beyond it on 2,000
    assert run([0.6875, 0.71875], select_se=1, n=32).best_z.tolist() == [0.0]
    assert run([0.6875, 0.71875], select_se=1, n=2000).best_z.tolist() == [1.0]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "1"])
def test_a_bad_select_se_is_refused_with_what_it_means(bad):
    with pytest.raises(ValueError, match="select_se must be a finite number >= 0"):
        Selection(bad)
    with pytest.raises(ValueError, match="select_se"):
        run([START, 0.9], select_se=bad)


def test_dfo_lora_keeps_its_start_unless_the_evidence_is_clear_by_default():
    assert bk.DFOLoRAConfig().select_se == 1.0 and bk.DFOLoRAConfig.cpu_quick().select_se == 1.0
    with pytest.raises(ValueError, match="select_se"):
        bk.DFOLoRAConfig(select_se=-0.5)


def test_pick_replays_the_loops_choice_on_a_recorded_dev_curve():
    rng = np.random.default_rng(0)
    for _ in range(200):
        scores = list(rng.integers(14, 30, size=rng.integers(1, 9)) / 32)
        for k in (0, 0.5, 1, 2):
            trace = run(scores, select_se=k)
            assert Selection(k, n=32).pick(scores) == int(trace.best_z[0])
