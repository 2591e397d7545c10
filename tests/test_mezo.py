"""MeZO on a model's own weights: in-place perturbations, a model given back bit for bit however a run
ends, no autograd, the same estimator as the black-box chapter, and the white-box forward it rests on."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.whitebox import access as whitebox
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.whitebox.mezo import MeZOConfig, TensorParams, applied, run_backprop, run_mezo


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def weights(lm):
    return {n: p.detach().clone() for n, p in lm.model.named_parameters()}


def changed(lm, start) -> list[str]:
    """The parameters that are not bit for bit what they were."""
    return [n for n, p in lm.model.named_parameters() if not torch.equal(p.detach(), start[n])]


def small(params="all", **kw):
    return dataclasses.replace(MeZOConfig.cpu_quick(seed=5, params=params),
                               **{"budget": 12, "eval_every": 4, "batch_size": 3, "lr": 1e-2, "eps": 1e-2, **kw})


@pytest.mark.parametrize("arch", ["llama", "roberta"])
def test_perturb_and_unperturb_leave_every_weight_at_its_start_within_fp32_rounding(arch):
    lm = bk.tiny_model(arch)
    start = weights(lm)
    params = TensorParams({n: p.data for n, p in lm.model.named_parameters()})
    eps, moved = 1e-3, []

    def loss():
        moved.append(max((p.detach() - start[n]).abs().max().item() for n, p in lm.model.named_parameters()))
        return 0.0

    d = ((123, 1.0), (456, -0.5))
    params.losses([(d, eps), (d, -eps), (((7, 1.0),), eps)], loss)
    assert min(moved) > 1e-4  # the weights did move while each loss was taken
    # +eps, -2 eps, +eps, then another direction and back: each add rounds once, to half an ulp of
    # |theta| + 2 eps |z|, so the bound is 4 roundings of 2^-24 (|theta| + 2 eps * 6) per weight (|z| < 6 here)
    for n, p in lm.model.named_parameters():
        bound = 4 * 2.0 ** -24 * (start[n].abs() + 12 * eps)
        assert ((p.detach() - start[n]).abs() <= bound).all(), n


def test_updates_are_undone_and_applied_again_from_their_seeds():
    lm = bk.tiny_model("llama")
    start = weights(lm)
    params = TensorParams({n: p.data for n, p in lm.model.named_parameters()})
    for k in range(5):
        params.update(((k, 1.0),), 1e-3, 1e-2)
    after = weights(lm)
    for entry in reversed(params.log):
        params.undo(entry)
    assert max((p.detach() - start[n]).abs().max().item() for n, p in lm.model.named_parameters()) < 1e-6
    for entry in params.log:  # applying the log again from the start gives the same weights
        params.redo(entry)
    assert max((p.detach() - after[n]).abs().max().item() for n, p in lm.model.named_parameters()) < 1e-6
    for entry in reversed(params.log):
        params.undo(entry)
    params.update(((0, 1.0),), 0.0, 0.5)  # decay alone: halves the weights, spares biases and norms (MeZO)
    for n, p in lm.model.named_parameters():
        expected = start[n] if "norm" in n or "bias" in n else 0.5 * start[n]
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-6)


def test_a_mezo_step_builds_no_autograd_graph(toy_split):
    lm = bk.tiny_model("llama")
    seen = []
    handle = lm.layers[0].register_forward_hook(
        lambda mod, args, out: seen.append((torch.is_grad_enabled(), (out[0] if isinstance(out, tuple) else out).grad_fn)))
    try:
        run_mezo(lm, "sst2", toy_split, small(budget=4), display=False, evaluate_test=False)
    finally:
        handle.remove()
    assert seen and all(not grad and fn is None for grad, fn in seen)
    assert all(p.grad is None for p in lm.model.parameters())


@pytest.mark.parametrize("params", ["all", "lora", "prefix"])
def test_run_mezo_is_deterministic_leaves_the_model_as_it_was_and_reapplies(params, toy_split, tmp_path):
    lm = bk.tiny_model("llama")
    start = weights(lm)
    res = run_mezo(lm, "sst2", toy_split, small(params), display=False)
    assert res.method == "mezo" and res.api_calls == 12 and res.stop["steps"] == 6
    assert changed(lm, start) == []
    assert sum(len(m._forward_hooks) for m in lm.model.modules()) == 0  # adapters removed
    again = run_mezo(lm, "sst2", toy_split, small(params), display=False)
    assert again.extra["updates"] == res.extra["updates"] and again.dev_metric == res.dev_metric
    loaded = bk.load_result(res.save(tmp_path / params))
    with applied(lm, loaded) as prompt:
        assert bk.evaluate(lm, "sst2", toy_split.test, prompt) == res.test_metric
    assert changed(lm, start) == []


@pytest.mark.parametrize("fail_at", ["test", "dev"])
def test_run_mezo_gives_the_model_back_even_when_it_fails(toy_split, monkeypatch, fail_at):
    """An error after some updates (here in the test or a dev evaluation) must not leave the user's
    model with MeZO's weights in it."""
    lm, calls = bk.tiny_model("llama"), []
    start = weights(lm)
    real = bk.mezo.evaluate

    def evaluate(model, task, examples, *a, **k):
        calls.append(examples.name)
        if (fail_at == "test" and examples is toy_split.test) or (fail_at == "dev" and len(calls) == 2):
            raise RuntimeError("the evaluation broke")
        return real(model, task, examples, *a, **k)
    monkeypatch.setattr(bk.mezo, "evaluate", evaluate)
    with pytest.raises(RuntimeError, match="evaluation broke"):
        run_mezo(lm, "sst2", toy_split, small(), display=False)
    assert changed(lm, start) == []


def test_ten_mezo_runs_on_all_weights_give_the_model_back_bit_for_bit_however_they_end(toy_split):
    """Moving back along a direction undoes a move only up to rounding (before the fix: every tensor off
    by up to 5e-7 after one run, more after each); the kept copy makes it exact after a normal end, a
    callback error, Ctrl-C in a callback or in a forward pass, and an error in a forward pass."""
    lm = bk.tiny_model("llama")
    start = weights(lm)
    forwards = {"n": 0, "fail_at": None, "error": None}

    def hook(module, args, out):
        forwards["n"] += 1
        if forwards["n"] == forwards["fail_at"]:
            raise forwards["error"]

    def callback_raising(error):
        def callback(trace):
            if trace.calls >= 6:
                raise error
        return callback

    handle = lm.layers[0].register_forward_hook(hook)
    try:
        for run in range(10):
            end = ["normal", "callback error", "callback ctrl-c", "forward error", "forward ctrl-c"][run % 5]
            forwards.update(n=0, fail_at=None)
            callback = None
            if end.startswith("callback"):
                callback = callback_raising(RuntimeError("a broken plot") if end == "callback error" else KeyboardInterrupt())
            elif end.startswith("forward"):  # the 6th forward pass: the second step's first point, weights perturbed (dev ran once, at 0)
                forwards.update(fail_at=6 + run // 5, error=RuntimeError("a broken layer") if end == "forward error"
                                else KeyboardInterrupt())
            cfg = small(seed=run, lr=1e-1, eps=1e-2)
            if end == "forward error":
                with pytest.raises(RuntimeError, match="a broken layer"):
                    run_mezo(lm, "sst2", toy_split, cfg, display=False)
            else:
                res = run_mezo(lm, "sst2", toy_split, cfg, display=False, callback=callback)
                assert {"normal": "budget", "callback error": "callback error"}.get(end, "interrupted") in res.stop
            assert changed(lm, start) == [], (run, end)
    finally:
        handle.remove()


def test_an_absurd_step_leaves_the_weights_exact_and_infinite_steps_are_refused(toy_split):
    """lr = eps = 1e30 sends the weights to inf/NaN during the run (before the fix they came back off by
    1e23); they come back exact. eps = inf left NaN weights: the config refuses it."""
    lm = bk.tiny_model("llama")
    start = weights(lm)
    res = run_mezo(lm, "sst2", toy_split, small(lr=1e30, eps=1e30), display=False)
    assert res.stop["steps"] == 6 and changed(lm, start) == []
    for bad in ({"eps": float("inf")}, {"lr": float("inf")}, {"eps": float("nan")}, {"lr": float("nan")}):
        field = next(iter(bad))
        with pytest.raises(ValueError, match=f"MeZOConfig: {field} must be a finite number"):
            small(**bad)


def test_mezo_runs_the_prior_guided_estimator_on_weights_too(toy_split):
    lm = bk.tiny_model("llama")
    res = run_mezo(lm, "sst2", toy_split, small("lora", optimizer="zo-gv", form="code", budget=8), display=False)
    assert res.stop["calls per step"] == 4 and res.stop["steps"] == 2


@pytest.mark.parametrize("params", ["all", "lora", "prefix"])
def test_the_backprop_reference_trains_the_same_tensors_and_restores_them(params, toy_split):
    lm = bk.tiny_model("llama")
    start = weights(lm)
    res = run_backprop(lm, "sst2", toy_split, small(params, batch_size=5), steps=6)  # one batch: the loss must fall
    losses = [h["best_loss"] for h in res.history]
    assert res.method == "backprop" and len(losses) == 6 and losses[-1] < losses[0]
    assert all(torch.equal(p.detach(), start[n]) for n, p in lm.model.named_parameters())
    assert all(p.grad is None and not p.requires_grad for p in lm.model.parameters())


def test_white_box_logits_equal_the_apis(tiny, toy):
    """The forward MeZO trains through is the one BlackBoxLM serves: no prompt, shallow, deep."""
    lm = tiny
    n = 2
    fw = whitebox.encode(lm, "sst2", toy, n, "auto")
    rows = torch.arange(len(toy))
    torch.manual_seed(0)
    shallow = 0.1 * torch.randn(n, lm.hidden_size)
    deep = 0.1 * torch.randn(lm.num_layers, n, lm.hidden_size)
    bare = whitebox.encode(lm, "sst2", toy, 0, "auto")  # no prompt: no placeholder tokens either
    for prompt in (None, shallow, deep):
        with torch.no_grad():
            mine = whitebox.answer_logits(lm, bare if prompt is None else fw, rows, prompt)
        ref = bk.label_logits(lm, "sst2", toy, prompt, position=fw.position)
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "roberta", "bert"])
def test_lora_starts_as_the_bare_model_changes_it_when_b_moves_and_always_leaves(arch, toy):
    lm = bk.tiny_model(arch)
    ref = bk.label_logits(lm, "sst2", toy)
    with whitebox.lora(lm, rank=2, targets=("q", "v")) as tensors:
        assert len(tensors) == 2 * 2 * lm.num_layers
        np.testing.assert_allclose(bk.label_logits(lm, "sst2", toy).numpy(), ref.numpy(), atol=1e-6)
        for name, t in tensors.items():
            if name.endswith("lora_B"):
                t.normal_()
        assert not torch.allclose(bk.label_logits(lm, "sst2", toy), ref)
    np.testing.assert_array_equal(bk.label_logits(lm, "sst2", toy).numpy(), ref.numpy())
    with pytest.raises(ValueError, match="c_attn"):
        with whitebox.lora(bk.tiny_model("gpt2")):
            pass


@pytest.mark.parametrize("bad, message", [
    ({"params": "bias"}, r"params must be one of \('all', 'lora', 'prefix'\), not 'bias'"),
    ({"loss": "neg_metric"}, r"loss must be one of \('ce', 'hinge'\)"),
    ({"budget": 2.5}, r"budget must be an int \(a whole number\), not float 2.5"),
    ({"budget": "20"}, r"budget must be an int, not str '20'"),
    ({"budget": 1}, r"budget must be at least 2, not 1"),
    ({"weight_decay": -1}, r"weight_decay must be at least 0, not -1.0"),
    ({"lr": -1e-6}, r"lr must be at least 0"),
    ({"eps": 0.0}, r"eps must be positive, not 0.0"),
    ({"batch_size": 0}, r"batch_size must be at least 1"),
    ({"top": 1.5}, r"top must be between 0.0 and 1.0"),
    ({"adam_lr": -1.0}, r"adam_lr must be positive"),
    ({"optimizer": "zo-gv", "budget": 4}, r"budget \(4\) must allow one step: 10 forward passes with optimizer='zo-gv'"),
    ({"lr": 0.5, "weight_decay": 2.0}, r"weight_decay \(2.0\) times lr \(0.5\) .* must be below 1"),
])
def test_bad_mezo_settings_are_value_errors_that_name_the_field(bad, message):
    with pytest.raises(ValueError, match=r"^MeZOConfig: " + message):
        MeZOConfig(**bad)


def test_good_mezo_settings_are_normalised():
    cfg = MeZOConfig(budget=np.int64(40), eps=1, lr=0, adam_lr=None)
    assert type(cfg.budget) is int and type(cfg.eps) is float and cfg.adam_default == 1e-5


def test_the_prompt_objective_and_its_gradient_are_one_function(toy):
    from bbtkit.whitebox.mezo import prompt_objective

    lm = bk.tiny_model("llama")
    f, grad = prompt_objective(lm, "sst2", toy, n_tokens=2)
    x = 0.05 * np.random.default_rng(0).standard_normal(2 * lm.hidden_size)
    u = np.random.default_rng(1).standard_normal(len(x))
    eps = 1e-2
    fd = (f([x + eps * u])[0] - f([x - eps * u])[0]) / (2 * eps)
    assert abs(fd - grad(x) @ u) < 1e-3 * max(1.0, abs(fd))
    np.testing.assert_allclose(f(np.stack([x, x + u])), [f(x)[0], f(x + u)[0]], rtol=1e-5)  # batched = one by one
