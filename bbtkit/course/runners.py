"""Runners: pick a method's settings, press Run, and watch its curves grow (BBT in notebook 03, BBTv2
in 04, DFO-LoRA in 09). Each runs the method through the registry, exactly as ``bk.run_*`` does. Until
the first Run, a runner shows a finished run (``start``, the notebook's own) to compare against, so
that its saved output is a figure, not an empty box."""
from __future__ import annotations

import matplotlib.pyplot as plt


def bbt_runner(model, task, split, base_cfg=None, start=None):
    """Pick BBT hyperparameters, press Run, and watch the loss and dev curves grow live.

    start: a finished ``Result`` (the notebook's own run) whose curves show until the first Run."""
    import dataclasses

    import ipywidgets as W
    from IPython.display import display

    from ..methods.registry import METHODS
    from .plots import run_curves

    method = METHODS["bbt"]
    base_cfg = base_cfg or method.config.cpu_quick()
    d = W.IntSlider(base_cfg.intrinsic_dim, 5, 500, 5, description="d")
    n = W.IntSlider(base_cfg.n_prompt_tokens, 1, 20, description="tokens")
    sigma = W.FloatLogSlider(base_cfg.sigma, base=10, min=-2, max=1, description="σ0")
    pop = W.IntSlider(base_cfg.popsize, 4, 40, description="popsize")
    budget = W.IntSlider(200, 20, 2000, 20, description="budget")
    loss = W.Dropdown(options=["ce", "hinge", "neg_metric"], value=base_cfg.loss, description="loss")
    proj = W.Dropdown(options=["uniform", "normal"], value=base_cfg.projection, description="projection")
    button, out = W.Button(description="Run BBT", button_style="primary"), W.Output()
    hint = _TimeHint(button, "Run BBT", budget, start)

    def run(_):
        cfg = dataclasses.replace(base_cfg, intrinsic_dim=d.value, n_prompt_tokens=n.value, sigma=sigma.value,
                                  popsize=pop.value, budget=max(budget.value, pop.value), loss=loss.value,
                                  projection=proj.value, eval_every=max(pop.value, budget.value // 8))
        hint.learn(_run_live(method, model, task, split, cfg, out, run_curves))

    button.on_click(run)
    _first_show(out, start, run_curves)
    ui = W.VBox([W.HBox([d, n, sigma]), W.HBox([pop, budget]), W.HBox([loss, proj, button]), out])
    display(ui)
    return ui


def bbtv2_runner(model, task, split, base_cfg=None, start=None):
    """Pick BBTv2's layers, d, sigma and budget, press Run, and watch the per-layer curves grow live.

    start: a finished ``Result`` (the notebook's own run) whose curves show until the first Run."""
    import dataclasses

    import ipywidgets as W
    from IPython.display import display

    from ..methods.registry import METHODS
    from .plots import layer_curves

    method = METHODS["bbtv2"]
    base_cfg = base_cfg or method.config.cpu_quick()
    L = model.num_layers
    choices = {"all layers": None, "every third layer": tuple(range(0, L, 3)),
               "bottom half": tuple(range(L // 2)), "top half": tuple(range(L // 2, L)),
               "top three": tuple(range(L - 3, L)), "embeddings only (like BBT)": (0,)}
    layers = W.Dropdown(options=list(choices), value="all layers", description="layers")
    d = W.IntSlider(base_cfg.intrinsic_dim, 5, 500, 5, description="d per layer")
    sigma = W.FloatLogSlider(base_cfg.sigma, base=10, min=-2, max=1, description="σ0")
    budget = W.IntSlider(base_cfg.budget, 20, 2000, 20, description="budget")
    button, out = W.Button(description="Run BBTv2", button_style="primary"), W.Output()
    hint = _TimeHint(button, "Run BBTv2", budget, start)

    def run(_):
        cfg = dataclasses.replace(base_cfg, layers=choices[layers.value], intrinsic_dim=d.value, sigma=sigma.value,
                                  budget=max(budget.value, base_cfg.popsize + 1),
                                  eval_every=max(base_cfg.popsize, budget.value // 8))
        hint.learn(_run_live(method, model, task, split, cfg, out, layer_curves))

    button.on_click(run)
    _first_show(out, start, layer_curves)
    ui = W.VBox([W.HBox([layers, d]), W.HBox([sigma, budget, button]), out])
    display(ui)
    return ui


class _TimeHint:
    """The Run button says how long a run of the chosen budget takes, from the seconds per call of the run
    shown (the notebook's, then each run made here); a dev check every budget / 8 calls is about 8 calls more."""

    def __init__(self, button, label: str, budget, start=None):
        self.button, self.label, self.budget = button, label, budget
        self.per_call = getattr(start, "seconds_per_call", None)
        budget.observe(lambda _: self.show(), names="value")
        self.show()

    def show(self) -> None:
        if self.per_call:
            minutes = (self.budget.value + 8) * self.per_call / 60
            self.button.description = f"{self.label} (≈ {minutes:.1f} min)" if minutes >= 1 else \
                f"{self.label} (≈ {minutes * 60:.0f} s)"
            self.button.tooltip = f"{self.per_call:.2f} s per API call on this machine; the curves grow as it runs"

    def learn(self, res) -> None:
        self.per_call = res.seconds_per_call or self.per_call
        self.show()


def _run_live(method, model, task, split, cfg, out, draw):
    """Run a registry method, redrawing its curves in ``out`` at every record, then print its summary;
    return the result."""
    with out:
        out.clear_output(wait=True)
        print(f"starting {cfg.budget} calls: the curves appear after the first generation…")

    def live(trace):
        with out:
            out.clear_output(wait=True)
            draw(trace.history, f"{trace.calls} of {cfg.budget} calls")
            plt.show()

    res = method.run(model, task, split, cfg, display=False, callback=live, evaluate_test=False)
    with out:
        print(res.summary())
    return res


def _first_show(out, start, draw) -> None:
    """Before the first Run: the curves of a finished run to compare against, or a line saying what to do."""
    with out:
        if start is None:
            print("Press Run: the curves grow here as the run goes.")
            return
        draw(start.history, f"the run above ({start.api_calls} calls): press Run to compare")
        plt.show()


def dfo_lora_tuner(model, split, task: str = "sst2", start=None):
    """Rank, targets, optimizer, top layers and budget of a DFO-LoRA run; press Run and watch the training
    loss of the kept adapters fall as the run goes (the button says about how long it takes).

    start: a finished ``Result`` (the notebook's own run) whose loss curve shows until the first Run."""
    import dataclasses

    import ipywidgets as W
    from IPython.display import display

    from ..methods.dfo_lora import DFOLoRAConfig, run_dfo_lora

    rank = W.IntSlider(4, 1, 16, description="rank")
    targets = W.Dropdown(options=["q, k", "q", "k", "q, k, v"], description="targets")
    optimizer = W.Dropdown(options=["cma", "fireworks"], description="optimizer")
    top = W.IntSlider(4, 1, model.num_layers, description="top layers")
    budget = W.IntSlider(60, 20, 400, 20, description="budget")
    button, out = W.Button(description="Run DFO-LoRA", button_style="primary"), W.Output()

    hint = _TimeHint(button, "Run DFO-LoRA", budget, start)

    def draw(history, title):
        rows = [(r["calls"], r["incumbent_loss"]) for r in history if r.get("incumbent_loss") is not None]
        plt.figure(figsize=(5, 2.6))
        if rows:
            plt.plot(*zip(*rows), drawstyle="steps-post")
        plt.xlabel("API calls")
        plt.ylabel("training loss (kept adapters)")
        plt.title(title, fontsize=8)
        plt.show()

    def run(_):
        cfg = dataclasses.replace(DFOLoRAConfig.cpu_quick(seed=split.seed, optimizer=optimizer.value), rank=rank.value,
                                  targets=tuple(t.strip() for t in targets.value.split(",")), budget=budget.value,
                                  layers=tuple(range(-top.value, 0)), eval_every=max(10, budget.value // 3), fw_sparks=20)
        with out:
            out.clear_output(wait=True)
            print(f"starting {cfg.budget} calls: the curve appears after the first generation…")
        what = f"rank {rank.value} on {targets.value}, {optimizer.value}, top {top.value} layers"

        def live(trace):
            with out:
                out.clear_output(wait=True)
                draw(trace.history, f"{what}: {trace.calls} of {cfg.budget} calls")

        res = run_dfo_lora(model, task, split, cfg, display=False, callback=live)
        hint.learn(res)
        with out:
            out.clear_output(wait=True)
            draw(res.history, what)
            print(res.summary(), f"| {res.seconds_per_call:.2f} s/call")

    button.on_click(run)
    with out:
        if start is None:
            print("Press Run: the training loss of the kept adapters shows here.")
        else:
            draw(start.history, f"the run above ({start.api_calls} calls): press Run to compare")
    ui = W.VBox([W.HBox([rank, targets, optimizer]), W.HBox([top, budget, button]), out])
    display(ui)
    return ui
