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
        ax.axhline(chance, ls="--", c="grey", lw=1, label="chance")
        ax.legend(fontsize=8, loc="lower right")
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
    ax.legend(fontsize=8)
    return ax
