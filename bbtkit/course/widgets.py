"""Widgets for exploring a model by hand; each reads the model through the same API as the methods
(``bk.top_tokens``, the whole vocabulary at the answer, is in ``bbtkit.api.published``)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..api.blackbox import label_logits
from ..data.splits import Example, Examples
from ..data.tasks import Task, get_task


def label_word_probs(lm, task: Task, text: str, text_b: str | None = None) -> dict[str, float]:
    """Probability of each label word (softmax over the label words) for one input."""
    task = get_task(task)
    logits = label_logits(lm, task, Examples([Example(text, text_b, 0)], name="typed"))[0]
    probs = torch.softmax(logits, -1).tolist()
    return dict(zip(task.words(lm.family), probs))


def label_word_explorer(lm, task: Task | str = "sst2", templates: dict | None = None):
    """Type a sentence, pick a template, edit the label words: see the label-word probabilities.

    templates: {name: template} or {name: (template, label words)}; picking a template puts its own
    label words (or the task's) in the label-word box.
    """
    import ipywidgets as W
    from IPython.display import display

    task = get_task(task)
    own = tuple(task.words(lm.family))
    templates = {name: (t, tuple(own)) if isinstance(t, str) else (t[0], tuple(t[1]))
                 for name, t in (templates or {"default": task.template(lm.family)}).items()}
    text = W.Textarea(value="A gripping story with wonderful acting.", layout=W.Layout(width="95%"),
                      description="Input")
    tpl = W.Dropdown(options=list(templates), description="Template")
    words = W.Text(value=", ".join(templates[tpl.value][1]), description="Label words")
    out = W.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            try:
                ws = tuple(w.strip() for w in words.value.split(",") if w.strip())
                t = task.with_template(templates[tpl.value][0], lm.family, ws)
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

    def new_template(change):
        words.value = ", ".join(templates[change["new"]][1])  # its own label words (this redraws)

    tpl.observe(new_template, names="value")
    for w in (text, tpl, words):
        w.observe(redraw, names="value")
    redraw()
    ui = W.VBox([text, tpl, words, out])
    display(ui)
    return ui


def show(obj) -> None:
    """Print the source of a bbtkit function or class, so a lesson shows the package's own code."""
    import inspect

    from IPython.display import Markdown, display
    display(Markdown(f"```python\n{inspect.getsource(obj)}```"))


def cma_stepper(frames: list[dict], f, lim=(-2.5, 2.5)):
    """Step through recorded CMA-ES generations with a slider (see ``cmaes.record_generations``)."""
    import ipywidgets as W

    from .plots import cma_frame

    def draw(generation: int = 0):
        fr = frames[generation]
        cma_frame(fr, f, lim=lim, title=f"generation {generation}: best {fr['best']:.3g}, sigma {fr['sigma']:.3g}")
        plt.show()

    return W.interact(draw, generation=W.IntSlider(0, 0, len(frames) - 1, 1, description="generation"))


def cma_tuner(functions: dict):
    """Sliders for sigma0, popsize and dimension: CMA-ES's best loss against evaluations."""
    import ipywidgets as W
    import numpy as np

    from .cmaes import minimize

    def draw(function="rosenbrock", dim=10, sigma0=0.5, popsize=10, budget=3000):
        f = functions[function]
        trace = minimize(lambda X: np.array([f(x) for x in X]), dim, budget=budget, popsize=popsize,
                         sigma0=sigma0, seed=0, x0=np.full(dim, -1.0))
        calls, best = trace.column("best_loss")
        plt.figure(figsize=(5, 3))
        plt.semilogy(calls, np.minimum.accumulate(best))
        plt.xlabel("function evaluations")
        plt.ylabel("best loss so far")
        plt.title(f"{function}, {dim}-D: {trace.stop}", fontsize=8)
        plt.show()

    return W.interact(draw, function=list(functions), dim=W.IntSlider(10, 2, 40),
                      sigma0=W.FloatLogSlider(0.5, base=10, min=-2, max=1),
                      popsize=W.IntSlider(10, 4, 64), budget=W.IntSlider(3000, 500, 10000, 500))


def mix_explorer(parts: dict, labels, task, mix: float = 0.5):
    """Slide AJO's mixture weight over saved predictions: mix * p_LM + (1 - mix) * p_f.

    parts: ``bk.methods.ajo.predict_parts(...)`` on some examples ({"lm": (n, C), "classifier": (n, C)});
    nothing is recomputed, so the slider answers at once.
    """
    import ipywidgets as W

    task, labels = get_task(task), np.asarray(labels)
    lm_p, f_p = np.asarray(parts["lm"]), np.asarray(parts["classifier"])

    def draw(mix: float = mix):
        p = mix * lm_p + (1 - mix) * f_p
        score = task.score(p.argmax(-1), labels)
        fig, ax = plt.subplots(figsize=(5, 2.6))
        grid = np.linspace(0, 1, 21)
        ax.plot(grid, [task.score((a * lm_p + (1 - a) * f_p).argmax(-1), labels) for a in grid], c="tab:blue")
        ax.axvline(mix, c="tab:red", ls="--")
        ax.set_xlabel("α, AJOConfig.mix (0 = classifier f alone, 1 = calibrated LM alone)")
        ax.set_ylabel(task.metric)
        ax.set_title(f"α = {mix:.2f}: {task.metric} {score:.1%}", fontsize=10)
        plt.show()

    return W.interact(draw, mix=W.FloatSlider(value=mix, min=0.0, max=1.0, step=0.05, description="α (mix)"))


def zo_tuner(functions: dict):
    """Sliders for eps, lr and M: ZO-SGD, prior-guided and greedy ZO on a test function, loss against calls."""
    import ipywidgets as W

    from ..tuning.loop import tune
    from ..optim.zo import ZO, VectorParams

    def draw(function="ellipsoid", dim=20, eps=1e-3, lr=2e-4, M=8, budget=2000):
        f = functions[function]
        plt.figure(figsize=(5.5, 3))
        for method, extra in [("zo-sgd", {}), ("zo-gv", {"samples": M}), ("zo-greedy", {"samples": M}),
                              ("zo-gv", {"form": "code"})]:
            opt = ZO(VectorParams(dim, np.full(dim, -1.0)), method, eps=eps, lr=lr, seed=0, **extra)
            trace = tune(lambda X: np.array([f(x) for x in X]), opt, budget=budget)
            calls, best = trace.column("best_loss")
            name = method + (" (code)" if extra.get("form") else f" (M={M})" if extra else "")
            plt.semilogy(calls, np.minimum.accumulate(np.nan_to_num(best, nan=np.inf)), label=name)
        plt.xlabel("function evaluations (API calls)")
        plt.ylabel("best loss so far")
        plt.title(f"{function}, {dim}-D, eps {eps:.0e}, lr {lr:.0e}", fontsize=8)
        plt.legend(fontsize=7)
        plt.show()

    return W.interact(draw, function=list(functions), dim=W.IntSlider(20, 2, 100),
                      eps=W.FloatLogSlider(1e-3, base=10, min=-5, max=0), lr=W.FloatLogSlider(2e-4, base=10, min=-6, max=-1),
                      M=W.IntSlider(8, 2, 32), budget=W.IntSlider(2000, 200, 10000, 200))


def ipl_explorer(model, prompt, task: str = "sst2", position: str = "auto",
                 text: str = "a gripping , beautifully acted film"):
    """Type an input: the weight IPL gives each prompt token for it, w_i(x), and the label-word
    probabilities with the weighted prompt and with the manual one (prompt: an IPL ``res.prompt``)."""
    import ipywidgets as W
    from IPython.display import display

    from ..api.blackbox import mean_embeddings

    task = get_task(task)

    def draw(text=text):
        ex = Examples([Example(text, None, 0)], name="typed")
        w = prompt.weights(mean_embeddings(model, ex))[0].numpy()
        probs = {"manual": label_logits(model, task, ex, torch.zeros(prompt.shape), position=position).softmax(-1)[0],
                 "IPL": label_logits(model, task, ex, prompt, position=position).softmax(-1)[0]}
        fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), gridspec_kw={"width_ratios": [1, 1.4]})
        axes[0].bar(range(len(w)), w, color="tab:purple")
        axes[0].set(ylim=(0, 1), xticks=range(len(w)), xlabel="prompt token i", ylabel="w_i(x)",
                    title="the prompt's weights for this input")
        x = np.arange(task.num_classes)
        for k, (name, p) in enumerate(probs.items()):
            axes[1].bar(x + (k - 0.5) * 0.4, p.numpy(), 0.4, label=name)
        axes[1].set_xticks(x, task.class_names)
        axes[1].set(ylim=(0, 1), ylabel="probability", title="label words")
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
        plt.tight_layout()
        plt.show()

    ui = W.interactive(draw, text=W.Text(text, continuous_update=False, layout=W.Layout(width="90%")))
    display(ui)
    return ui


from .explorers import board_explorer, calibration_explorer, eot_explorer, optimizer_explorer  # noqa: E402  (notebooks 03, 05, 07, 10)
from .runners import bbt_runner, bbtv2_runner, dfo_lora_tuner  # noqa: E402  (notebooks 03, 04 and 09)
