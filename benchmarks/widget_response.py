"""How fast each notebook's widget answers a typical change: the median of 5 changes, each timed from setting
a control to the figure drawn (rendered to PNG, as the notebook's inline backend does). Runners (notebooks 03,
04, 09) answer a slider at once and start a run only on Run: for them the time to the first curve after Run
is measured too, the moment the student sees progress.

    python benchmarks/widget_response.py            # about 3 min on a 2-core CPU; writes runs/widgets.json

The embedded model in fp32, as the notebooks load it. What stands in for a notebook's own input is said in
the "input" column: where a redraw depends only on an array's shape, a random array of the same shape.
"""
from __future__ import annotations

import io
import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import bbtkit as bk  # noqa: E402
from bbtkit.course import leaderboard as lb  # noqa: E402
from bbtkit.course.cmaes import TEST_FUNCTIONS, record_generations  # noqa: E402
from bbtkit.methods.eot import CALLS_PER_PROBLEM, ReasoningResult  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
SHOWN: list[float] = []  # the moment each figure was rendered


def _render() -> None:
    """plt.show as the inline backend does it: the figure becomes a PNG."""
    for num in plt.get_fignums():
        plt.figure(num).savefig(io.BytesIO(), format="png")
    plt.close("all")
    SHOWN.append(time.perf_counter())


def timed(control, values) -> float:
    """Median seconds from setting control.value to the last figure drawn, over values."""
    seconds = []
    for v in values:
        t0 = time.perf_counter()
        control.value = v
        _render()  # interact redraws without plt.show when outside a kernel: render what it drew
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds)


def controls(ui) -> dict:
    box = getattr(ui, "widget", ui)
    found, stack = {}, [box]
    while stack:
        w = stack.pop()
        if hasattr(w, "description") and getattr(w, "description", ""):
            found.setdefault(w.description, w)
        stack.extend(getattr(w, "children", ()))
    return found


def first_curve_after_run(ui) -> float:
    """Seconds from pressing Run to the first figure of the new run."""
    import ipywidgets as W
    button = next(w for w in controls(ui).values() if isinstance(w, W.Button))
    SHOWN.clear()
    t0 = time.perf_counter()
    button.click()
    return (SHOWN[0] if SHOWN else time.perf_counter()) - t0


def main() -> None:
    plt.show = _render
    lm = bk.load_model(dtype="fp32")
    print(bk.runtime.describe(), flush=True)
    split = bk.load_split("sst2", seed=42, test_size=872)
    overall = bk.get_task("sst2").with_template("{text_a} Overall, the movie was {mask}", lm.family, ("bad", "great"))
    sentences = ["A gripping story with wonderful acting.", "Dull and far too long.", "I laughed, I cried.",
                 "The plot makes no sense at all.", "Not bad, not great either."]
    rows = []

    def add(notebook, widget, change, seconds, note=""):
        rows.append({"notebook": notebook, "widget": widget, "change": change, "seconds": round(seconds, 3), "input": note})
        print(f"{notebook}  {widget:22s} {change:38s} {seconds:6.2f} s  {note}", flush=True)

    ui = bk.course.widgets.label_word_explorer(lm, "sst2", {"default": "Review: {text_a}\nSentiment: {mask}",
                                                     "overall": ("{text_a} Overall, the movie was {mask}", ("bad", "great"))})
    add("01", "label_word_explorer", "type a new input", timed(ui.children[0], sentences))
    frames = record_generations(TEST_FUNCTIONS["rosenbrock"], [-1.5, 2.0], sigma0=0.3, popsize=8, seed=2, generations=80)
    ui = bk.course.widgets.cma_stepper(frames, TEST_FUNCTIONS["rosenbrock"])
    add("02", "cma_stepper", "move the generation slider", timed(controls(ui)["generation"], [5, 20, 40, 60, 79]))
    ui = bk.course.widgets.cma_tuner(TEST_FUNCTIONS)
    add("02", "cma_tuner", "change σ0 (3000 evaluations)", timed(controls(ui)["sigma0"], [0.1, 0.2, 1.0, 2.0, 0.5]))
    for nb, name, runner, start in [("03", "bbt_runner", bk.course.widgets.bbt_runner, "bbt-overall-sst2-42"),
                                    ("04", "bbtv2_runner", bk.course.widgets.bbtv2_runner, "bbtv2-overall-sst2-42")]:
        res = bk.load_result(RUNS / "chapters" / start)
        ui = runner(lm, overall, split, start=res)
        add(nb, name, "move the budget slider", timed(controls(ui)["budget"], [100, 300, 500, 800, 40]))
        add(nb, name, "press Run: first curve", first_curve_after_run(ui), "budget 40 calls")
    q = bk.label_logits(lm, overall, split.test)
    tasks = {"Overall": overall, "Overall (2)": overall, "Overall (3)": overall}
    cal = (bk.Calibration.fit(lm, overall, split.train), bk.Calibration.fit(lm, overall, method="contextual"))
    ui = bk.course.widgets.calibration_explorer(lm, tasks, split.train, split.test, {k: (q, *cal) for k in tasks})
    add("05", "calibration_explorer", "move λ", timed(controls(ui)["λ × default"], [0.3, 0.5, 2.0, 4.0, 1.0]),
        "one template's 872 test logits under three names")
    parts = {k: torch.log_softmax(torch.randn(872, 2), -1) for k in ("lm", "classifier")}
    ui = bk.course.widgets.mix_explorer({k: v.numpy() for k, v in parts.items()}, [ex.label for ex in split.test], overall)
    add("06", "mix_explorer", "move α", timed(controls(ui)["α (mix)"], [0.1, 0.3, 0.7, 0.9, 0.5]),
        "random parts of the notebook's shape (872 × 2)")
    methods = [m for m in lb.ROWS if lb.cached_runs(RUNS / "leaderboard", m, "sst2")]
    ui = bk.course.widgets.board_explorer(RUNS / "leaderboard", lb.TASKS, methods)
    add("07", "board_explorer", "pick a task", timed(controls(ui)["task"], ["snli", "qqp", "qnli", "dbpedia", "sst2"]))
    ui = bk.course.widgets.zo_tuner(TEST_FUNCTIONS)
    add("08", "zo_tuner", "change the learning rate (2000 evaluations)",
        timed(controls(ui)["lr"], [1e-4, 5e-4, 1e-3, 5e-5, 2e-4]))
    start = lb.cached_runs(RUNS / "leaderboard", "dfo_lora", "sst2").get("sst2-42")
    ui = bk.course.widgets.dfo_lora_tuner(lm, split, start=start)
    add("09", "dfo_lora_tuner", "move the budget slider", timed(controls(ui)["budget"], [40, 100, 200, 300, 60]))
    ui.children[1].children[1].value = 20
    add("09", "dfo_lora_tuner", "press Run: first curve", first_curve_after_run(ui), "budget 20 calls")
    runs = {m: ReasoningResult.load(RUNS / "eot" / "multiarith" / f"{m}.json") for m in CALLS_PER_PROBLEM
            if (RUNS / "eot" / "multiarith" / f"{m}.json").is_file()}
    if runs:
        ui = bk.course.widgets.eot_explorer(runs)
        problems = controls(ui)["problem"].options
        add("10", "eot_explorer", "pick a problem", timed(controls(ui)["problem"], [problems[i % len(problems)] for i in (1, 2, 3, 4, 0)]))
    tuned = lb.cached_runs(RUNS / "leaderboard", "ipl", "sst2").get("sst2-42")
    if tuned is not None:
        ui = bk.course.widgets.ipl_explorer(lm, tuned.prompt, "sst2", position=tuned.position)
        text = next(w for w in controls(ui).values() if hasattr(w, "continuous_update"))
        add("11", "ipl_explorer", "type a new input", timed(text, sentences))
    out = RUNS / "widgets.json"
    out.write_text(json.dumps({"machine": bk.runtime.describe(), "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}\n\n| notebook | widget | change | seconds (median of 5) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['notebook']} | `{r['widget']}` | {r['change']} | {r['seconds']:.2f} |")


if __name__ == "__main__":
    main()
