"""Widgets for exploring a model by hand; each reads the model through the same API as the methods."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from .api import label_logits
from .data import Example, Examples
from .tasks import Task, get_task


def label_word_probs(lm, task: Task, text: str, text_b: str | None = None) -> dict[str, float]:
    """Probability of each label word (softmax over the label words) for one input."""
    task = get_task(task)
    logits = label_logits(lm, task, Examples([Example(text, text_b, 0)], name="typed"))[0]
    probs = torch.softmax(logits, -1).tolist()
    return dict(zip(task.words(lm.family), probs))


def label_word_explorer(lm, task: Task | str = "sst2", templates: dict[str, str] | None = None):
    """Type a sentence, pick a template, edit the label words: see the label-word probabilities."""
    import ipywidgets as W
    from IPython.display import display

    task = get_task(task)
    templates = templates or {"default": task.template(lm.family)}
    text = W.Textarea(value="A gripping story with wonderful acting.", layout=W.Layout(width="95%"),
                      description="Input")
    tpl = W.Dropdown(options=list(templates), description="Template")
    words = W.Text(value=", ".join(task.words(lm.family)), description="Label words")
    out = W.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            try:
                ws = tuple(w.strip() for w in words.value.split(",") if w.strip())
                t = task.with_template(templates[tpl.value], lm.family, ws)
                probs = label_word_probs(lm, t, text.value)
            except ValueError as err:  # a multi-token label word, say: show the message, not a traceback
                print(err)
                return
            fig, ax = plt.subplots(figsize=(5, 2.2))
            ax.barh(list(probs), list(probs.values()), color="tab:blue")
            ax.set_xlim(0, 1)
            ax.set_xlabel("probability among the label words")
            ax.set_title(repr(t.fill(Example(text.value, None, 0), lm.family))[:80], fontsize=8)
            plt.show()

    for w in (text, tpl, words):
        w.observe(redraw, names="value")
    redraw()
    display(W.VBox([text, tpl, words, out]))
