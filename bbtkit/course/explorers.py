"""Explorers over what is already computed: calibration on saved logits (notebook 05) and the leaderboard's
cached runs (notebook 07). Each draws with a plain function (``draw_*``, tested without a browser) behind
ipywidgets controls, so that moving a control answers at once and costs no API call."""
from __future__ import annotations

import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..api.blackbox import label_logits
from ..tuning.calibration import Calibration
from .plots import so_far
from ..data.tasks import get_task

CALIBRATIONS = ("none", "champion", "contextual")


def calibrated_probs(logits, method: str, champion: Calibration, contextual: Calibration, lam: float = 1.0):
    """(n, classes) probabilities: no calibration, the champion's W = λ·diag(q̄)⁻¹ with λ times its default
    (mean q̄), or contextual calibration with its calibrated logits times λ."""
    q = torch.as_tensor(logits).float()
    if method == "none":
        return torch.softmax(lam * q, -1)
    if method == "champion":
        return dataclasses.replace(champion, scale=champion.scale * lam).probs(q)
    if method == "contextual":
        return torch.softmax(lam * contextual.apply(q), -1)
    raise ValueError(f"Unknown calibration {method!r}; use one of {CALIBRATIONS}.")


def draw_calibration(task, logits, labels, method: str, champion, contextual, lam: float = 1.0, name: str = ""):
    """Left: P(class) for each example by gold label (class 1 for two classes); right: the share of each
    predicted class against the gold share. The title gives the metric and the mean confidence."""
    task, labels = get_task(task), np.asarray(labels)
    p = calibrated_probs(logits, method, champion, contextual, lam).numpy()
    pred = p.argmax(-1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1.4, 1]})
    c = 1 if task.num_classes == 2 else None
    edges = np.linspace(0, 1, 21)
    for k, color in zip(range(task.num_classes), plt.cm.tab10.colors):
        shown = p[labels == k, c if c is not None else k]
        axes[0].hist(shown, edges, alpha=0.6, color=color, label=f"gold {task.class_names[k]}")
    axes[0].axvline(0.5, ls="--", c="grey", lw=1)
    axes[0].set(xlabel=f"P({task.class_names[1]})" if c else "P(gold class's word)", ylabel="examples")
    axes[0].legend(fontsize=7, loc="upper left")
    x = np.arange(task.num_classes)
    axes[1].bar(x - 0.2, np.bincount(pred, minlength=task.num_classes) / len(pred), 0.4, label="predicted")
    axes[1].bar(x + 0.2, np.bincount(labels, minlength=task.num_classes) / len(labels), 0.4, label="gold")
    axes[1].set_xticks(x, task.class_names, fontsize=8)
    axes[1].set(ylim=(0, 1), ylabel="share of examples")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{name}: {method}, λ × {lam:.2g}: {task.metric} {task.score(pred, labels):.1%}, "
                 f"mean confidence {p.max(-1).mean():.2f}", fontsize=10)
    fig.tight_layout()
    return axes


def calibration_explorer(model, tasks: dict, train, test, computed: dict | None = None):
    """Pick a template, a calibration and λ: the probability histograms and predicted shares of the test
    examples. tasks: {name: Task}; each template's logits and calibrations are computed once, on first
    pick (one label_logits over test, one over train, the content-free inputs), unless ``computed`` holds
    them already ({name: (test logits, champion, contextual)}, what the notebook computed): then every
    change only redraws."""
    import ipywidgets as W

    labels = [ex.label for ex in test]
    cache: dict = dict(computed or {})

    def parts(name):
        if name not in cache:
            t = tasks[name]
            cache[name] = (label_logits(model, t, test), Calibration.fit(model, t, train),
                           Calibration.fit(model, t, method="contextual"))
        return cache[name]

    def draw(template=next(iter(tasks)), method="champion", lam=1.0):
        q, champion, contextual = parts(template)
        draw_calibration(tasks[template], q, labels, method, champion, contextual, lam, template)
        plt.show()

    return W.interact(draw, template=list(tasks), method=list(CALIBRATIONS),
                      lam=W.FloatLogSlider(1.0, base=10, min=-1, max=1, step=0.1, description="λ × default"))


def draw_board(root, task: str, methods, seed="all", setting: str | None = None):
    """The best dev metric so far against API calls of each method's cached runs on one task (one seed, or
    every seed with its mean), and the test metrics in the legend."""
    from .leaderboard import cached_runs
    from ..methods.registry import get_method

    fig, ax = plt.subplots(figsize=(7, 3))
    for method, color in zip(methods, plt.cm.tab10.colors):
        runs = cached_runs(root, method, task, setting)
        if seed != "all":
            runs = {k: r for k, r in runs.items() if k == f"{task}-{seed}"}
        curves = [(r, [h for h in r.history if h.get("dev_metric") is not None]) for r in runs.values()]
        curves = [(r, h) for r, h in curves if h]
        if not curves:
            continue
        grid = np.arange(0, max(h[-1]["calls"] for _, h in curves) + 1, 10)
        ys = np.array([so_far(h, "dev_metric", grid, max) for _, h in curves])
        for y in ys:
            ax.plot(grid, y, color=color, alpha=0.35 if len(ys) > 1 else 1, lw=1)
        test = np.array([r.test_metric for r, _ in curves if r.test_metric is not None])
        label = f"{get_method(method).label}: test {100 * test.mean():.1f}" + (f" ± {100 * test.std():.1f}" if len(test) > 1 else "")
        seen = np.isfinite(ys).any(0)  # the mean over seeds where at least one has a dev record
        mean = np.full(len(grid), np.nan)
        mean[seen] = np.nanmean(ys[:, seen], 0)
        ax.plot(grid, mean, color=color, lw=2, label=label, marker="o" if len(grid) == 1 else None)
    ax.set(xlabel="API calls", ylabel="best dev metric so far", title=f"{task}, seed {seed}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    return ax


def board_explorer(root, tasks, methods, seeds=(13, 42, 100), setting: str | None = None,
                   shown=("bbt", "bbtv2", "ajo")):
    """Pick a task, methods and a seed (or all): each method's budget curve and test metric, read from the
    cached runs under root (nothing is run). shown: the methods picked at first (those of them in methods)."""
    import ipywidgets as W

    first = tuple(m for m in shown if m in methods) or tuple(methods[:3])

    def draw(task=tasks[0], chosen=first, seed="all"):
        draw_board(root, task, chosen, seed, setting)
        plt.show()

    return W.interact(draw, task=list(tasks), seed=["all", *seeds],
                      chosen=W.SelectMultiple(options=list(methods), value=first, rows=min(8, len(methods)),
                                              description="methods"))


def eot_explorer(results: dict):
    """Pick a method and a problem: every step's input and output (results: {label: ReasoningResult}
    over the same problems, e.g. EoT and its baselines). Nothing is run."""
    import ipywidgets as W

    from ..methods.eot import trace_text

    first = next(iter(results.values()))
    problems = {f"{i + 1}. {t['question'][:60]}": i for i, t in enumerate(first.traces)}

    def draw(method=next(iter(results)), problem=next(iter(problems))):
        res = results[method]
        print(f"{res.summary()}\n")
        print(trace_text(res.traces[problems[problem]]))

    return W.interact(draw, method=list(results), problem=W.Dropdown(options=list(problems), description="problem",
                                                                      layout=W.Layout(width="90%")))


def draw_answers(model, task, text: str, mode: str, decimals: int, extraction: list[dict]):
    """Left: what a service answering ``mode`` (``api.answers``) returns for one input, as probabilities;
    right: the attacker's agreement with the server against queries under each mode (from
    ``runs/serve/defenses.json``), the chosen one drawn thick."""
    from ..api.answers import Answers
    from ..data.examples import Example, Examples

    task = get_task(task)
    logits = label_logits(model, task, Examples([Example(text, None, 0)]))
    shown = torch.softmax(Answers(mode, decimals)(logits).float(), -1)[0].numpy()
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.8), gridspec_kw={"width_ratios": [1, 1.4]})
    axes[0].bar(task.class_names, shown, color="tab:blue")
    for x, p in enumerate(shown):
        axes[0].text(x, p, f"{p:.3f}", ha="center", va="bottom", fontsize=8)
    axes[0].set(ylim=(0, 1.15), title=f"the answer ({Answers(mode, decimals)!r})", ylabel="probability shown")
    for m, color in zip(("full", "top", "rounded"), plt.cm.tab10.colors):
        rows = [r for r in extraction if r["answers"] == m]
        if rows:
            axes[1].plot([r["queries"] for r in rows], [r["agreement"] for r in rows], marker="o", color=color,
                         lw=3 if m == mode else 1, label=m)
    axes[1].set(xscale="log", xlabel="queries (unlabelled sentences answered)", ylabel="agreement with the server",
                title="the attacker's copy, on 400 sentences it never asked")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return axes


def answer_explorer(model, task, extraction: list[dict], text: str = "a gorgeous, witty, seductive movie."):
    """Type an input, pick how the service answers: the answer it gets, and what each way of answering let an
    attacker copy (read from the benchmark's runs; one forward pass per typed input, no API call)."""
    import ipywidgets as W

    def draw(text=text, answers="full", decimals=1):
        draw_answers(model, task, text, answers, decimals, extraction)
        plt.show()

    return W.interact(draw, text=W.Text(value=text, description="input", layout=W.Layout(width="80%")),
                      answers=["full", "top", "rounded"], decimals=W.IntSlider(value=1, min=0, max=3))


def draw_optimizers(table: dict, task: str, chosen, budget: int, labels: dict | None = None):
    """Left: each chosen optimizer's lowest training loss so far against API calls up to ``budget`` (mean over
    seeds, band min to max); right: its best dev metric so far at ``budget`` (mean and each seed). ``table``:
    ``optimizer_table.load_table()``. Returns the two axes."""
    labels = labels or {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3), gridspec_kw={"width_ratios": [1.5, 1]})
    grid = np.arange(0, budget + 1, 10)
    from .plots import seed_curves

    runs = {labels.get(n, n): table[n][task]["runs"] for n in chosen if task in table.get(n, {})}
    seed_curves(runs, "best_loss", grid, min, ax=left, title=f"{task}: training loss, {budget} calls",
                ylabel="lowest training loss so far")
    for i, (name, results) in enumerate(runs.items()):
        dev = [so_far(r.history, "dev_metric", [budget], max)[0] for r in results]
        right.scatter([i] * len(dev), dev, s=12, color="grey")
        right.bar(i, np.nanmean(dev), 0.6, alpha=0.7)
    right.set_xticks(range(len(runs)), list(runs), rotation=30, ha="right", fontsize=8)
    right.set(ylabel=f"best dev metric by {budget} calls", ylim=(0, 1))
    fig.tight_layout()
    return left, right


def optimizer_explorer(table: dict, tasks, labels: dict | None = None, shown=("cma", "random", "NGOpt")):
    """Pick a task, optimizers and a budget: their curves and dev metrics from the cached runs of
    ``benchmarks/optimizers.py`` (nothing is run, so it answers at once)."""
    import ipywidgets as W

    names = [n for n in table if any(t in table[n] for t in tasks)]
    first = tuple(n for n in shown if n in names) or tuple(names[:3])
    most = max(int(r.api_calls) for n in names for t in table[n] for r in table[n][t]["runs"])

    def draw(task=tasks[0], chosen=first, budget=most):
        draw_optimizers(table, task, chosen, budget, labels)
        plt.show()

    return W.interact(draw, task=list(tasks),
                      chosen=W.SelectMultiple(options=[((labels or {}).get(n, n), n) for n in names], value=first,
                                              rows=min(8, len(names)), description="optimizers"),
                      budget=W.IntSlider(value=most, min=20, max=most, step=10, description="API calls"))
