"""Checked exercises: ``bk.check("03.5", answer)`` says at once whether an answer is right, with a hint if not.

Each check works the right answer out from the package at check time (or tests a function the student
wrote on inputs it draws), so no notebook and no message shows it. A check prints one line and returns
True or False; ``...`` or None as the answer means "not answered yet".
"""
from __future__ import annotations

import numpy as np
import torch

CHECKS: dict = {}


def _check(key: str, title: str):
    def register(fn):
        CHECKS[key] = (title, fn)
        return fn
    return register


class Verdict:
    """What ``check`` returns: true if the answer is right. A notebook shows nothing for it (the printed
    line says it all), so a check cell's output is that line alone."""

    def __init__(self, ok: bool):
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return self.ok == bool(other)

    def __repr__(self) -> str:
        return f"Verdict({self.ok})"

    def _ipython_display_(self) -> None:
        pass


def check(exercise: str, *answer, **kw) -> Verdict:
    """Check an answer to a checked exercise ("01.6", "03.5", ...): prints ✓ or ✗ with a hint; the
    returned Verdict is true if the answer is right."""
    if exercise not in CHECKS:
        raise ValueError(f"No checked exercise {exercise!r}; the checked ones are {', '.join(sorted(CHECKS))}.")
    title, fn = CHECKS[exercise]
    if not answer or any(_unanswered(a) for a in answer):
        print(f"○ {exercise} ({title}): no answer yet. Replace the ... with yours and run the cell again.")
        return Verdict(False)
    try:
        ok, message = fn(*answer, **kw)
    except Exception as e:  # a wrong kind of answer is a hint, not a traceback
        ok, message = False, f"the check could not use this answer ({type(e).__name__}: {e})."
    print(f"{'✓' if ok else '✗'} {exercise} ({title}): {'right. ' if ok else 'not yet: '}{message}")
    return Verdict(ok)


def _unanswered(a) -> bool:
    if a is None or a is Ellipsis:
        return True
    if isinstance(a, dict):
        return any(_unanswered(v) for v in a.values())
    return isinstance(a, (list, tuple)) and any(_unanswered(v) for v in a)


def _number(x) -> float:
    x = float(x)
    if not np.isfinite(x):
        raise ValueError("the answer is not a finite number")
    return x


@_check("01.6", "swapped label words")
def _swapped(accuracy, accuracy_swapped):
    a, s = _number(accuracy), _number(accuracy_swapped)
    if not (0 <= a <= 1 and 0 <= s <= 1):
        return False, "give accuracies as fractions in [0, 1] (bk.evaluate returns one)."
    if abs(a + s - 1) < 1e-6:
        return True, "with two classes every prediction now names the other class, so each right answer turns wrong."
    return False, ("measure both with the same template on the same examples, swapping only the order of the two "
                   "label words. With two classes, what must the two accuracies add up to?")


@_check("02.5", "pycma's default population size")
def _popsize(sizes: dict):
    need = (10, 100, 500)
    if not isinstance(sizes, dict) or set(sizes) != set(need):
        return False, f"give a dict {{d: population size}} for d in {need}."
    right = {d: int(4 + 3 * np.log(d)) for d in need}
    wrong = [d for d in need if int(sizes[d]) != right[d]]
    if not wrong:
        return True, "it grows with the logarithm of d: 500 dimensions need only a few more samples than 100."
    return False, (f"the size for d = {wrong[0]} is off. pycma documents its default in cma.CMAOptions()['popsize']; "
                   "the ⌊…⌋ rounds down.")


@_check("03.5", "the normal projection's spread")
def _projection_std(std, *, model, cfg=None):
    from ..methods.bbt import BBTConfig
    from ..tuning.projection import normal_std
    from ..api.published import value_scale

    cfg = cfg or BBTConfig.cpu_quick()
    right = normal_std(value_scale(model), cfg.intrinsic_dim, cfg.sigma, cfg.alpha)
    if abs(_number(std) / right - 1) < 0.02:
        return True, "the entries' spread is set so that a step of σ in z moves p about α times the embeddings' scale."
    return False, ("build the projection as run_bbt does (bk.methods.bbt.make_projection(cfg, lm, tokens * hidden, σ̂, seed), "
                   "with σ̂ = api.value_scales(n)[0]) and take the std of proj.matrix(). Did you use cpu_quick's α and σ?")


@_check("04.6", "generations per layer")
def _generations(counts, *, layers: int = 30, budget: int = 400, popsize: int = 10):
    from collections import Counter

    from ..tuning.loop import tune
    from ..optim.optimizers import LayerwiseCMA

    rng = np.random.default_rng(0)
    trace = tune(lambda Z: rng.random(len(Z)), LayerwiseCMA(layers, 4, 1.0, popsize, range(layers)), budget=budget)
    seen = Counter(r["layer"] for r in trace.history if r.get("layer") is not None)
    right = [seen.get(layer, 0) for layer in range(layers)]
    counts = [int(c) for c in counts]
    if counts == right:
        return True, ("the budget runs out partway through the second round, so the lower layers get one generation "
                      "more: with few calls, the order of the visits matters.")
    if len(counts) != layers:
        return False, f"give one count per layer, {layers} numbers, layer 0 first."
    return False, ("count how many calls the loop spends before the first generation (hint: the incumbent's loss), "
                   "then follow Layerwise.ask: bottom to top, one generation each, and round again.")


@_check("05.6", "λ and the loss")
def _lam(logits, labels, lam_a, lam_b):
    q = torch.as_tensor(np.asarray(logits, dtype=float))
    y = torch.as_tensor(np.asarray(labels)).long()
    la, lb = _number(lam_a), _number(lam_b)
    if q.ndim != 2 or len(q) != len(y) or la <= 0 or lb <= 0:
        return False, "give logits (n, classes), n labels and two λ > 0."
    q_bar = q.mean(0)
    if (q_bar <= 0).any():
        return False, "champion calibration needs positive mean logits q̄; shift your logits up."
    cal = q / q_bar
    pa, pb = (la * cal).argmax(-1), (lb * cal).argmax(-1)
    ce = [torch.nn.functional.cross_entropy(lam * cal, y).item() for lam in (la, lb)]
    ratio = max(ce) / max(min(ce), 1e-12)
    if torch.equal(pa, pb) and ratio > 2:
        return True, (f"the same predictions, and cross-entropies {ce[0]:.3f} and {ce[1]:.3f}: λ sets how sure the "
                      "probabilities are, which a loss (and AJO's mixture) feels.")
    return False, (f"the losses differ by a factor of {ratio:.2f}. Try λ values far apart, and examples the "
                   "calibrated logits get right by a clear margin (or wrong).")


@_check("06.6", "AJO's mixture")
def _mixture(fn):
    from ..tuning.heads import mixture

    g = torch.Generator().manual_seed(0)
    for mix in (0.0, 0.3, 0.5, 1.0):
        lm = torch.softmax(torch.randn(7, 3, generator=g), -1)
        head = torch.randn(7, 3, generator=g)
        got = torch.as_tensor(fn(lm.clone(), head.clone(), mix), dtype=torch.float32)
        if got.shape != lm.shape or not torch.allclose(got, mixture(lm, head, mix), atol=1e-5):
            return False, (f"with mix = {mix} your probabilities differ. The LM's are probabilities already; f "
                           "returns logits. Does each row still sum to 1?")
    return True, "a convex mix of two distributions: either can correct the other where it is unsure."


@_check("07.5", "a row of the board")
def _board(mean, std, *, root, method: str = "bbtv2", task: str = "sst2"):
    from .leaderboard import cached_runs

    runs = cached_runs(root, method, task)
    if not runs:
        return False, f"no cached runs of {method} on {task} under {root}; pass the board's root."
    test = np.array([r.test_metric for r in runs.values()])
    m, s = _number(mean), _number(std)
    if m > 1:  # percent
        m, s = m / 100, s / 100
    if abs(m - test.mean()) < 5e-4 and abs(s - test.std()) < 5e-4:
        return True, f"{len(test)} seeds; a difference smaller than about two of these stds is not a ranking."
    if abs(m - test.mean()) < 5e-4:
        return False, "the mean is right; the board's std is numpy's default (ddof = 0) over the seeds' test metrics."
    return False, f"average the test metric of every cached seed of {method} on {task} (lb.cached_runs)."


@_check("08.6", "a two-point gradient estimate")
def _spsa(estimate):
    rng = np.random.default_rng(0)
    d = np.array([1.0, 2.0, 5.0, 0.5, 3.0])
    b = np.array([0.3, -1.0, 0.0, 2.0, 0.5])
    x = np.array([0.2, -0.1, 0.4, 1.0, -0.3])
    calls = [0]

    def f(v):
        calls[0] += 1
        v = np.asarray(v, dtype=float)
        return float(0.5 * v @ (d * v) + b @ v)

    draws = 4000
    g = np.mean([np.asarray(estimate(f, x.copy(), 1e-3, rng), dtype=float) for _ in range(draws)], axis=0)
    if calls[0] > 2 * draws:
        return False, f"{calls[0] / draws:.1f} calls of f per estimate; a two-point estimate uses two."
    true = d * x + b
    err = np.linalg.norm(g - true) / np.linalg.norm(true)
    if g.shape == true.shape and err < 0.1:
        return True, f"averaged over {draws} draws it is the gradient (off by {err:.1%}): one draw is noisy, not biased."
    return False, (f"averaged over {draws} draws your estimate is {err:.0%} off the gradient. Perturb along one "
                   "random direction u ~ N(0, I), use (f(x + εu) − f(x − εu)) / (2ε), and multiply by u.")


@_check("09.6", "what an adapter tunes")
def _lora_numbers(n, *, model, layers: int = 6, rank: int = 4, targets=("q", "k")):
    from ..api.blackbox import BlackBoxLM
    from ..data.splits import Examples
    from ..data.examples import Example

    api = BlackBoxLM(model, "sst2", Examples([Example("a", None, 0)]))
    shapes = api.adapter_shapes(tuple(targets))
    right = layers * sum(rank * i + o * rank for i, o in shapes.values())
    if int(n) == right:
        return True, "A is rank × in and B out × rank, per target and layer; z of d = 100 per layer generates them all."
    return False, ("api.adapter_shapes() gives each target's (in, out). Count A and B for each target, then each "
                   "layer; K's out is smaller than Q's in a model with grouped-query attention.")


@_check("11.6", "the relevance weights")
def _relevance(fn):
    from ..tuning.spaces import relevance

    g = torch.Generator().manual_seed(0)
    n, H, h = 3, 8, 4
    P, Wq, bq, Wk, bk = (torch.randn(*s, generator=g) for s in [(n, H), (h, H), (h,), (h, H), (h,)])
    feats = torch.randn(5, H, generator=g)
    got = torch.as_tensor(fn(P, Wq, bq, Wk, bk, feats), dtype=torch.float32)
    right = relevance(P[None], Wq[None], bq[None], Wk[None], bk[None], feats)[0]
    if got.shape == right.shape and torch.allclose(got, right, atol=1e-5):
        return True, "a sigmoid of a scaled dot product: each token is switched on or off by the input."
    return False, (f"shape {tuple(got.shape)}, expected one weight per input and token, (inputs, tokens). "
                   "q_i = W_q p_i + b_q, k = W_k x̄ + b_k, then sigmoid(q_i · k / √h).")


@_check("10.6", "reading the answer out of a reasoning")
def _last_number(fn):
    from ..data.reasoning import extract_answer, is_correct

    rng = np.random.default_rng()
    texts = ["She has 3 apples and buys 4 more, so she has 7 apples.", "It costs $1,250 in total.",
             "The temperature fell to -4 degrees.", "Each box holds 2.5 kg, so 4 boxes weigh 10 kg.",
             "So 1,000,000 minus 1 is 999,999."]
    for _ in range(4):  # drawn at check time, so no fixed list of texts can be memorised
        a, b = int(rng.integers(2, 60)), int(rng.integers(1000, 99999))
        texts.append(f"First {a} people came, then {b:,} more; in all {a + b:,} people came.")
        texts.append(f"He was at {a} m and went down {a + b} m, so he is at {-b} m.")
    for text in texts:
        got = fn(text)
        if not is_correct(None if got is None else str(got).replace(",", ""), extract_answer(text, "number", "last"),
                          "number"):
            return False, (f"for {text!r} your function gave {got!r}. The answer is the last number of the text; keep "
                           "a minus sign, drop the commas between thousands and a leading $, and keep a decimal point.")
    return True, (f"{len(texts)} texts read right. An extraction call exists because a small model's reasoning often "
                  "ends on some other number; the trigger asks it to state the answer once more.")


@_check("12.6", "rounded answers")
def _rounded(fn):
    g = torch.Generator().manual_seed(int(np.random.default_rng().integers(1 << 30)))  # drawn at check time
    for decimals in (1, 2, 3):
        probs = torch.softmax(3 * torch.randn(6, 4, generator=g), -1)
        got = torch.as_tensor(fn(probs, decimals), dtype=torch.float64)
        right = torch.round(probs.double() * 10 ** decimals) / 10 ** decimals
        if got.shape != right.shape or not torch.allclose(got, right, atol=1e-9):
            return False, (f"with decimals={decimals}, row 0 came back as {got[0].tolist() if got.ndim == 2 else got}. "
                           "Scale by 10**decimals, round to the nearest whole number, scale back.")
    return True, ("what remains is a coarse picture of the model's confidence: enough to tune on, less to copy from "
                  "(section 7 measures both).")
