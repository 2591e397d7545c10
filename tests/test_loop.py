"""The one tuning loop: a stopped run keeps what it found, a checkpoint resumes to the same end as a
run never stopped (the black-box rule in the imports: tests/test_import_graph.py)."""
import dataclasses

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.optim.optimizers import CMA, LayerwiseCMA

from test_ajo import positive_logit_roberta


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


SMALL = dict(n_prompt_tokens=2, intrinsic_dim=8, popsize=4, eval_every=8)
CASES = {  # method -> (run, config, model): long enough for more than three generations after the stop
    "bbt": (bk.run_bbt, lambda: dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), budget=40, **SMALL),
            lambda: bk.tiny_model("llama")),
    "bbtv2": (bk.run_bbtv2, lambda: dataclasses.replace(bk.BBTv2Config.cpu_quick(seed=3), budget=41, **SMALL),
              lambda: bk.tiny_model("llama", layers=3)),
    "ajo": (bk.run_ajo, lambda: dataclasses.replace(bk.AJOConfig.cpu_quick(seed=5), budget=40, phase_generations=3,
                                                     head_width=16, batch_size=2, **SMALL), positive_logit_roberta),
}


class StopAfter:
    """A callback that presses Ctrl-C after n generations and remembers what the loop reported."""

    def __init__(self, n: int):
        self.n, self.seen = n, []

    def __call__(self, trace):
        self.seen.append((trace.calls, None if trace.best_z is None else trace.best_z.copy(), trace.best_dev))
        if len(self.seen) == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize("method", list(CASES))
def test_ctrl_c_returns_the_best_so_far_and_the_checkpoint_resumes_to_the_same_end(method, toy_split, tmp_path):
    run, make_cfg, make_model = CASES[method]
    lm, cfg = make_model(), make_cfg()
    whole = run(lm, "sst2", toy_split, cfg, display=False)

    stopper, ckpt = StopAfter(3), tmp_path / f"{method}.ckpt.json"
    stopped = run(lm, "sst2", toy_split, cfg, display=False, callback=stopper, checkpoint=ckpt)
    calls, best_z, best_dev = stopper.seen[-1]
    assert "interrupted" in stopped.stop and stopped.test_metric is None
    assert stopped.api_calls == calls < whole.api_calls
    np.testing.assert_array_equal(stopped.z.reshape(-1), best_z.reshape(-1))  # the best z so far, kept
    assert stopped.dev_metric == best_dev and stopped.prompt is not None
    assert ckpt.exists()

    resumed = run(lm, "sst2", toy_split, cfg, display=False, resume=ckpt)
    assert resumed.api_calls == whole.api_calls and "interrupted" not in resumed.stop
    np.testing.assert_allclose(resumed.z, whole.z, atol=1e-6, rtol=0)
    assert resumed.dev_metric == whole.dev_metric and resumed.test_metric == whole.test_metric
    assert [h["calls"] for h in resumed.history] == [h["calls"] for h in whole.history]


@pytest.mark.parametrize("method", ["bbtv2", "ajo"])
def test_ctrl_c_inside_an_api_call_keeps_the_last_whole_generation(method, toy_split, tmp_path, monkeypatch):
    """Stopped halfway through a generation (or a classifier phase), the run still resumes to the same end."""
    run, make_cfg, make_model = CASES[method]
    lm, cfg = make_model(), make_cfg()
    whole = run(lm, "sst2", toy_split, cfg, display=False)
    real_call = bk.BlackBoxLM.__call__

    def flaky(api, prompts=None, **kw):
        if api.budget is not None and api.calls >= 18:  # the training API, in its fifth generation
            raise KeyboardInterrupt
        return real_call(api, prompts, **kw)

    monkeypatch.setattr(bk.BlackBoxLM, "__call__", flaky)
    stopped = run(lm, "sst2", toy_split, cfg, display=False, checkpoint=tmp_path / "c.json")
    monkeypatch.setattr(bk.BlackBoxLM, "__call__", real_call)
    assert "interrupted" in stopped.stop and stopped.api_calls < whole.api_calls
    resumed = run(lm, "sst2", toy_split, cfg, display=False, resume=tmp_path / "c.json")
    np.testing.assert_allclose(resumed.z, whole.z, atol=1e-6, rtol=0)
    assert resumed.api_calls == whole.api_calls and resumed.test_metric == whole.test_metric


def test_resume_refuses_a_checkpoint_of_another_config(toy_split, tmp_path):
    run, make_cfg, make_model = CASES["bbt"]
    lm, cfg = make_model(), make_cfg()
    run(lm, "sst2", toy_split, cfg, display=False, callback=StopAfter(2), checkpoint=tmp_path / "c.json")
    with pytest.raises(ValueError, match="another run"):
        run(lm, "sst2", toy_split, dataclasses.replace(cfg, sigma=0.5), display=False, resume=tmp_path / "c.json")


def test_a_failing_callback_ends_the_run_with_its_reason_and_keeps_the_result(toy_split):
    run, make_cfg, make_model = CASES["bbt"]

    def broken(trace):
        raise RuntimeError("the live plot broke")

    res = run(make_model(), "sst2", toy_split, make_cfg(), display=False, callback=broken)
    assert res.stop == {"callback error": "RuntimeError: the live plot broke"}
    assert res.api_calls == 4 and res.z.shape == (1, 8) and res.test_metric is not None


def test_a_budget_error_inside_the_objective_ends_the_run_cleanly():
    opt = CMA(3, 1.0, popsize=4, seed=0)

    class API:  # the loop reads and restores only the call counter
        calls = 0

    api = API()

    def evaluate(X):
        if api.calls >= 8:
            raise bk.BudgetExceededError("spent")
        api.calls += len(X)
        return np.sum(np.square(X), 1)

    trace = bk.tune(evaluate, opt, budget=100, api=api)
    assert trace.stop == {"budget error": "spent"} and trace.calls == 8 and len(trace.history) == 2


def test_layerwise_cma_keeps_a_block_only_if_the_whole_prompt_improves():
    opt = LayerwiseCMA(2, 3, 1.0, popsize=4, seeds=[0, 1], names=[5, 7])
    opt.rescore(1.0)
    X = opt.ask()
    assert X.shape == (4, 2, 3) and opt.info()["layer"] == 5 and not X[:, 1].any()
    opt.tell(X, [2.0, 3.0, 4.0, 5.0])  # all worse than the incumbent: nothing kept
    assert not opt.Z.any() and opt.incumbent == 1.0
    X = opt.ask()
    assert opt.info()["layer"] == 7 and opt.info()["round"] == 1
    opt.tell(X, [2.0, 0.5, 4.0, 5.0])
    np.testing.assert_array_equal(opt.Z[1], X[1, 1])
    assert opt.incumbent == 0.5 and not opt.Z[0].any()
    opt.ask()
    assert opt.info()["round"] == 2 and opt.info()["layer"] == 5


def test_every_registered_method_has_presets_and_a_run_function():
    for name, m in bk.METHODS.items():
        cfg = m.preset("sst2", 13, budget=60)
        assert dataclasses.is_dataclass(cfg) and callable(m.run), name
        paper = m.preset("sst2", 13, paper=True)
        assert type(paper) is type(cfg) and paper.seed == 13, name  # the paper's settings, in the same config type
        if m.tunes:
            assert paper.budget >= cfg.budget, name
        if m.tunes:
            assert cfg.budget == 60
    with pytest.raises(ValueError, match="registered methods"):
        bk.get_method("lora")


def test_a_candidate_with_nan_logits_ends_the_run_and_keeps_its_best():
    """A diverged candidate (the API refuses NaN or inf logits, uncharged) stops the run with the reason;
    what the generations before it found is kept."""
    from bbtkit.guards import NonFiniteLogitsError

    opt = CMA(3, 1.0, popsize=4, seed=0)

    class API:
        calls = 0

    api = API()

    def evaluate(X):
        if api.calls >= 8:
            raise NonFiniteLogitsError("Candidate 0 of 4 gives NaN or inf logits")
        api.calls += len(X)
        return np.sum(np.square(X), 1)

    trace = bk.tune(evaluate, opt, budget=100, api=api)
    assert trace.stop == {"non-finite logits": "Candidate 0 of 4 gives NaN or inf logits"}
    assert trace.calls == 8 and len(trace.history) == 2 and np.isfinite(trace.best_loss)


class Shift:
    """A toy objective that a second phase changes: |x - c|^2, with c moved by each phase (one call each)."""

    def __init__(self, api, opt):
        self.api, self.opt, self.c, self.moves = api, opt, 0.0, 0

    def __call__(self, X):
        self.api.calls += len(X)
        return np.sum(np.square(np.asarray(X).reshape(len(X), -1) - self.c), 1)

    def phase(self):
        self.c, self.moves = self.c + 0.5, self.moves + 1
        inc = float(self(self.opt.final()[None])[0])
        return {"calls": self.api.calls, "phase": "shift", "best_loss": inc}, inc

    def state(self):
        import torch
        return {"c": torch.tensor([self.c])}

    def load_state(self, tensors):
        self.c = float(tensors["c"][0])

    def snapshot(self):
        return self.state()


def test_an_alternating_optimizer_runs_its_phase_first_then_every_k_generations_within_the_budget(tmp_path):
    from bbtkit.optim.alternating import Alternating

    class API:
        calls = 0

    def run(**kw):
        api, inner = API(), LayerwiseCMA(2, 3, 0.5, popsize=4, seeds=[0, 1])
        shift = Shift(api, inner)
        opt = Alternating(inner, shift.phase, 2, learned=shift, names=("search", "shift"))
        return bk.tune(shift, opt, budget=30, api=api, **kw), shift

    trace, shift = run()
    phases = [h.get("phase") for h in trace.history]
    # the phase first (1 call), then two generations (4 calls each) and the phase again, while it fits
    assert phases == ["shift", "search", "search", "shift", "search", "search", "shift", "search", "search"]
    assert trace.calls == 27 <= 30 and shift.moves == 3 and trace.stop["shift phases"] == 3
    assert [h["calls"] for h in trace.history] == [1, 5, 9, 10, 14, 18, 19, 23, 27]

    stopper, ckpt = StopAfter(4), tmp_path / "alt.ckpt.json"  # Ctrl-C after 4 generations: the third phase is due
    stopped, _ = run(callback=stopper, checkpoint=ckpt)
    assert stopped.interrupted and stopped.calls == 18 and stopped.stop["shift phases"] == 2
    resumed, shifted = run(resume=ckpt)  # the phase count and f's state come back from the checkpoint
    assert [h.get("phase") for h in resumed.history] == phases and shifted.c == shift.c == 1.5
    assert resumed.stop["shift phases"] == 3
    np.testing.assert_array_equal(resumed.best_z, trace.best_z)


def test_alternating_needs_an_optimizer_that_takes_the_incumbent_loss():
    from bbtkit.optim.alternating import Alternating

    with pytest.raises(TypeError, match="needs an optimizer with rescore"):
        Alternating(CMA(3, 1.0, popsize=4, seed=0), lambda: ({}, 0.0), 2)
