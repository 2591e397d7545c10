"""Checked exercises: a right answer passes, a wrong one fails with a hint that does not give the answer away."""
import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.course import leaderboard as lb
from bbtkit.course.exercises import CHECKS


def run(capsys, key, *answer, **kw):
    ok = bk.check(key, *answer, **kw)
    return ok, capsys.readouterr().out


def test_a_verdict_is_true_or_false_and_a_notebook_shows_nothing_for_it(capsys):
    from IPython.core.formatters import DisplayFormatter

    ok, out = run(capsys, "01.6", ..., ...)
    assert not ok and ok == False and repr(ok) == "Verdict(False)"  # noqa: E712
    assert DisplayFormatter().format(ok) == ({}, {})  # the printed line is the cell's only output


def test_every_chapter_has_a_checked_exercise():
    assert {k.split(".")[0] for k in CHECKS} >= {"01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"}


def test_no_answer_yet_and_unknown_exercises(capsys):
    ok, out = run(capsys, "01.6", ..., ...)
    assert not ok and "no answer yet" in out
    assert "no answer yet" in run(capsys, "02.5", {10: ..., 100: ..., 500: ...})[1]
    with pytest.raises(ValueError, match="the checked ones are 01.6"):
        bk.check("99.1", 1)


def test_swapped_label_words(capsys):
    assert run(capsys, "01.6", 0.8, 0.2)[0]
    ok, out = run(capsys, "01.6", 0.8, 0.5)
    assert not ok and "add up to" in out
    ok, out = run(capsys, "01.6", "high", 0.2)
    assert not ok and "could not use this answer" in out  # a wrong kind of answer is a hint, not a traceback


def test_popsize(capsys):
    assert run(capsys, "02.5", {10: 10, 100: 17, 500: 22})[0]
    ok, out = run(capsys, "02.5", {10: 10, 100: 18, 500: 22})
    assert not ok and "d = 100" in out and "17" not in out


def test_projection_std(capsys):
    lm = bk.tiny_model("llama")
    cfg = bk.BBTConfig.cpu_quick()
    sigma_hat = float(bk.BlackBoxLM(lm, "sst2", bk.Examples([bk.Example("good", None, 1)])).value_scales(cfg.n_prompt_tokens)[0])
    proj = bk.methods.bbt.make_projection(cfg, lm, cfg.n_prompt_tokens * lm.hidden_size, sigma_hat, 0)
    measured = float(proj.matrix().std())
    assert run(capsys, "03.5", measured, model=lm)[0]
    ok, out = run(capsys, "03.5", measured * 5, model=lm)
    assert not ok and f"{measured:.4f}" not in out


def test_generations_per_layer(capsys):
    assert run(capsys, "04.6", [2] * 10 + [1] * 20)[0]
    ok, out = run(capsys, "04.6", [2] * 11 + [1] * 19)
    assert not ok and "incumbent" in out
    assert not run(capsys, "04.6", [1] * 29)[0]


def test_lambda_and_the_loss(capsys):
    logits, labels = [[4.0, 1.0], [1.0, 4.0]], [0, 1]
    assert run(capsys, "05.6", logits, labels, 1.0, 10.0)[0]
    ok, out = run(capsys, "05.6", logits, labels, 1.0, 1.1)
    assert not ok and "factor" in out
    assert not run(capsys, "05.6", [[-1.0, -2.0]], [0], 1.0, 9.0)[0]  # q̄ < 0


def test_mixture(capsys):
    assert run(capsys, "06.6", lambda p, h, m: m * p + (1 - m) * torch.softmax(h, -1))[0]
    ok, out = run(capsys, "06.6", lambda p, h, m: m * p + (1 - m) * h)  # logits taken for probabilities
    assert not ok and "logits" in out


def test_a_row_of_the_board(capsys, tmp_path):
    for seed, metric in [(13, 0.70), (42, 0.80), (100, 0.75)]:
        res = bk.Result(method="bbtv2", task="sst2", model="m", config={}, z=np.zeros((0, 1)), projections=[],
                        n_tokens=0, hidden=1, layers=[], num_layers=1, position="auto", test_metric=metric)
        res.save(tmp_path / "hand" / "bbtv2" / f"sst2-{seed}")
    (tmp_path / "hand" / lb.SETTING_FILE).write_text("{}")
    std = float(np.std([0.70, 0.80, 0.75]))
    assert run(capsys, "07.5", 0.75, std, root=tmp_path)[0]
    assert run(capsys, "07.5", 75.0, 100 * std, root=tmp_path)[0]  # percent
    ok, out = run(capsys, "07.5", 0.75, float(np.std([0.70, 0.80, 0.75], ddof=1)), root=tmp_path)
    assert not ok and "ddof" in out


def test_two_point_estimate(capsys):
    def spsa(f, x, eps, rng):
        u = rng.standard_normal(len(x))
        return (f(x + eps * u) - f(x - eps * u)) / (2 * eps) * u

    assert run(capsys, "08.6", spsa)[0]
    ok, out = run(capsys, "08.6", lambda f, x, eps, rng: spsa(f, x, eps, rng) * 2)
    assert not ok and "off the gradient" in out
    ok, out = run(capsys, "08.6", lambda f, x, eps, rng: [spsa(f, x, eps, rng) for _ in range(2)][0])
    assert not ok and "4.0 calls" in out


def test_lora_numbers(capsys):
    lm = bk.tiny_model("llama")
    shapes = bk.BlackBoxLM(lm, "sst2", bk.Examples([bk.Example("good", None, 1)])).adapter_shapes()
    right = 6 * sum(4 * i + o * 4 for i, o in shapes.values())
    assert run(capsys, "09.6", right, model=lm)[0]
    ok, out = run(capsys, "09.6", right + 1, model=lm)
    assert not ok and str(right) not in out


def test_relevance(capsys):
    def weights(P, Wq, bq, Wk, bk_, x):
        q, k = P @ Wq.T + bq, x @ Wk.T + bk_
        return torch.sigmoid(k @ q.T / Wq.shape[0] ** 0.5)

    assert run(capsys, "11.6", weights)[0]
    ok, out = run(capsys, "11.6", lambda *a: weights(*a).T)
    assert not ok and "(inputs, tokens)" in out


def test_10_6_reads_the_last_number_of_a_reasoning(capsys):
    import re

    assert run(capsys, "10.6", lambda t: bk.extract_answer(t, "number", "last"))[0]
    naive = lambda t: re.findall(r"\d+", t)[-1]  # noqa: E731  (no sign, no commas, no decimals)
    ok, out = run(capsys, "10.6", naive)
    assert not ok and "last number" in out
    ok, out = run(capsys, "10.6", lambda t: re.findall(r"-?[\d,]+", t)[0])  # the first number, not the last
    assert not ok


def test_12_6_rounds_probabilities(capsys):
    assert run(capsys, "12.6", lambda p, d: torch.round(p * 10 ** d) / 10 ** d)[0]
    ok, out = run(capsys, "12.6", lambda p, d: torch.floor(p * 10 ** d) / 10 ** d)  # truncates, does not round
    assert not ok and "round to the nearest" in out
