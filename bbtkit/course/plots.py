"""Plots that read results; they compute nothing themselves."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def bars(values: dict[str, float], title: str = "", ylabel: str = "", chance: float | None = None,
         ax=None, fmt: str = "{:.0%}", color: str = "tab:blue"):
    """A labelled bar chart of {name: value}; an optional dashed line at chance level."""
    ax = ax or plt.subplots(figsize=(max(4, 1.1 * len(values)), 3))[1]
    names, vals = list(values), list(values.values())
    bar = ax.bar(range(len(vals)), vals, color=color)
    ax.bar_label(bar, labels=[fmt.format(v) for v in vals], fontsize=8)
    ax.set_xticks(range(len(vals)), names, rotation=20, ha="right", fontsize=8)
    if chance is not None:
        ax.axhline(chance, ls="--", c="grey", lw=1)
        ax.annotate("chance", xy=(1.0, chance), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=7, color="grey")  # beside the axes, over no bar
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(1.0, max(vals) * 1.15))
    return ax


def grouped_bars(table: dict[str, dict[str, float]], title: str = "", ylabel: str = "", ax=None):
    """Bars grouped by row: table[group][series] -> value (e.g. label-word probability per input)."""
    groups = list(table)
    series = list(next(iter(table.values())))
    ax = ax or plt.subplots(figsize=(max(5, 1.3 * len(groups)), 3))[1]
    width = 0.8 / len(series)
    for k, name in enumerate(series):
        ax.bar(np.arange(len(groups)) + k * width - 0.4 + width / 2, [table[g][name] for g in groups], width, label=name)
    ax.set_xticks(range(len(groups)), groups, rotation=15, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside the axes: it covers no bar
    return ax


def ellipse(ax, mean, cov, n_std: float = 2.0, **kw):
    """Draw the n_std contour of N(mean, cov) in 2-D."""
    from matplotlib.patches import Ellipse

    vals, vecs = np.linalg.eigh(np.asarray(cov))
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    w, h = 2 * n_std * np.sqrt(np.maximum(vals[::-1], 0))
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, **kw))


def _contours(ax, f, lim):
    ax = ax or plt.subplots(figsize=(4, 4))[1]
    g = np.linspace(*lim, 120)
    Z = np.array([[f(np.array([a, b])) for a in g] for b in g])
    ax.contour(g, g, np.log10(Z + 1e-3), levels=15, cmap="Greys", linewidths=0.6)
    return ax


def fireworks_frame(frame: dict, f, ax=None, lim=(-2.5, 2.5), title: str = ""):
    """One generation of the fireworks algorithm in 2-D (``fireworks.record``): each firework (a star)
    with its explosion amplitude (a square: the box its sparks fall in), its sparks in its colour,
    and the Gaussian sparks (crosses)."""
    from matplotlib.patches import Rectangle

    ax = _contours(ax, f, lim)
    colours = plt.cm.tab10(np.arange(len(frame["fireworks"])) % 10)
    for i, (x, a) in enumerate(zip(frame["fireworks"], frame["amplitudes"])):
        ax.add_patch(Rectangle(x - a, 2 * a, 2 * a, fill=False, ec=colours[i], lw=0.8, ls="--"))
        mine = frame["sparks"][frame["parent"] == i]
        ax.scatter(mine[:, 0], mine[:, 1], s=8, color=colours[i])
        ax.scatter(*x, s=120, marker="*", color=colours[i], edgecolors="k", linewidths=0.6, zorder=3)
    if len(frame["gaussian"]):
        ax.scatter(frame["gaussian"][:, 0], frame["gaussian"][:, 1], s=30, marker="x", color="k", label="Gaussian sparks")
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return ax


def cma_frame(frame: dict, f, ax=None, lim=(-2.5, 2.5), title: str = ""):
    """One CMA-ES generation in 2-D: f's contours, the population, the selected best, the mean and
    the 2-sigma ellipse of the distribution the population was drawn from."""
    ax = _contours(ax, f, lim)
    X, sel = frame["X"], frame["selected"]
    ax.scatter(X[:, 0], X[:, 1], s=14, c="tab:blue", label="population")
    ax.scatter(X[sel, 0], X[sel, 1], s=30, facecolors="none", edgecolors="tab:red", label="selected (best μ)")
    ax.plot(*frame["mean"], "k+", ms=12, mew=2, label="mean")
    ellipse(ax, frame["mean"], frame["cov"], ec="tab:green", lw=1.5)
    ax.set_xlim(*lim)
    ax.set_ylim(*lim)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return ax


def curves(series: dict[str, tuple], title: str = "", xlabel: str = "API calls", ylabel: str = "",
           ax=None, logy: bool = False):
    """Line plot of {label: (x, y)}."""
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label, marker="." if len(x) < 30 else None)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside the axes: it covers no bar
    return ax


def run_curves(history: list[dict], title: str = "", axes=None, label: str | None = None):
    """Loss (best and mean of each generation) and train/dev metric against API calls, from a run's history."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3))
    rows = [h for h in history if h.get("best_loss") is not None]
    calls = [h["calls"] for h in rows]
    axes[0].plot(calls, [h["best_loss"] for h in rows], label=f"{label or ''} best".strip())
    if label is None:
        axes[0].plot(calls, [h["mean_loss"] for h in rows], alpha=0.5, label="mean")
    if label is None and "incumbent_loss" in rows[0]:  # BBTv2: the loss of the prompt kept so far
        axes[0].plot(calls, [h["incumbent_loss"] for h in rows], color="k", label="kept prompt")
    axes[0].set_xlabel("API calls")
    axes[0].set_ylabel("training loss")
    dev = [(h["calls"], h["dev_metric"]) for h in history if h.get("dev_metric") is not None]
    train = [(h["calls"], h["train_metric"]) for h in rows if h.get("train_metric") is not None]
    if train:
        axes[1].plot(*zip(*train), alpha=0.6, label=f"{label or ''} train (best candidate)".strip())
    if dev:
        axes[1].plot(*zip(*dev), marker="o", label=f"{label or ''} dev".strip())
    axes[1].set_xlabel("API calls")
    axes[1].set_ylabel("metric")
    for ax in axes:
        ax.legend(fontsize=8)
    axes[0].set_title(title, fontsize=10)
    return axes


def layer_curves(history: list[dict], title: str = "", axes=None):
    """BBTv2 by layer: each layer's generations (best loss against API calls, coloured by layer), and
    how much of the training loss's fall each layer's kept prompts account for."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 3.2), gridspec_kw={"width_ratios": [3, 2]})
    rows = [h for h in history if h.get("layer") is not None]
    layers = sorted({h["layer"] for h in rows})
    cmap = plt.get_cmap("viridis")
    gains = dict.fromkeys(layers, 0.0)
    before = next(h["incumbent_loss"] for h in history if h.get("layer") is None)
    for h in rows:
        gains[h["layer"]] += before - h["incumbent_loss"]
        before = h["incumbent_loss"]
    for l in layers:
        mine = [h for h in rows if h["layer"] == l]
        color = cmap(layers.index(l) / max(1, len(layers) - 1))
        axes[0].plot([h["calls"] for h in mine], [h["best_loss"] for h in mine], marker=".", lw=0.8, color=color)
    axes[0].plot([h["calls"] for h in rows], [h["incumbent_loss"] for h in rows], color="k", lw=1.5,
                 label="kept prompt")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(layers[0], layers[-1]))
    plt.colorbar(sm, ax=axes[0], label="layer")
    axes[0].set_xlabel("API calls")
    axes[0].set_ylabel("best training loss of a generation")
    axes[0].legend(fontsize=8)
    axes[0].set_title(title, fontsize=10)
    axes[1].bar(layers, [gains[l] for l in layers], color=[cmap(i / max(1, len(layers) - 1)) for i in range(len(layers))])
    axes[1].set_xlabel("layer")
    axes[1].set_ylabel("training loss removed")
    axes[1].set_title("Which layers' prompts lowered the loss", fontsize=10)
    return axes


def prob_histograms(panels: dict[str, tuple[np.ndarray, np.ndarray]], class_names=("negative", "positive"),
                    title: str = "", bins: int = 20):
    """One histogram per panel of P(class 1) for each example, split by gold label.

    panels: {title: (probs (n,) of class 1, labels (n,))}; a fair classifier puts the two colours
    on either side of 0.5, a biased one piles both on one side.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.8), sharey=True, squeeze=False)
    edges = np.linspace(0, 1, bins + 1)
    for ax, (name, (p, y)) in zip(axes[0], panels.items()):
        p, y = np.asarray(p, dtype=float), np.asarray(y)
        for c, color in ((0, "tab:red"), (1, "tab:green")):
            ax.hist(p[y == c], edges, alpha=0.6, color=color, label=f"gold {class_names[c]}")
        ax.axvline(0.5, ls="--", c="grey", lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"P({class_names[1]})")
    axes[0][0].set_ylabel("test examples")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return axes[0]


def so_far(history: list[dict], key: str, grid, best=min) -> np.ndarray:
    """The best value of ``key`` recorded at or before each number of calls in grid (nan before the first)."""
    rows = [(h["calls"], h[key]) for h in history if h.get(key) is not None]
    out = []
    for c in grid:
        seen = [v for calls, v in rows if calls <= c]
        out.append(best(seen) if seen else np.nan)
    return np.array(out, dtype=float)


def seed_curves(runs: dict[str, list], key: str, grid, best=min, ax=None, title: str = "", ylabel: str = ""):
    """Mean (line) and spread (band: min to max) over seeds of ``so_far`` for each method's runs."""
    grid = np.asarray(grid)
    ax = ax or plt.subplots(figsize=(5, 3))[1]
    for label, results in runs.items():
        if not results:
            continue
        Y = np.array([so_far(r.history, key, grid, best) for r in results])
        seen = ~np.isnan(Y).all(0)  # grid points before any record stay blank
        ax.plot(grid[seen], np.nanmean(Y[:, seen], 0), label=f"{label} ({len(results)})")
        ax.fill_between(grid[seen], np.nanmin(Y[:, seen], 0), np.nanmax(Y[:, seen], 0), alpha=0.15)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("API calls")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return ax
