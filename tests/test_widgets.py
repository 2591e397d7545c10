"""Widgets build on tiny models and respond to their controls."""
import matplotlib

import bbtkit as bk

matplotlib.use("Agg")


def test_the_label_word_explorer_carries_each_templates_own_label_words():
    lm = bk.tiny_model("llama")
    templates = {"plain": "{text_a} It was {mask}",
                 "summary": ("{text_a} In summary, it was {mask}", ("terrible", "great"))}
    ui = bk.course.widgets.label_word_explorer(lm, "sst2", templates)
    text, tpl, words, out = ui.children
    assert words.value == ", ".join(bk.get_task("sst2").words(lm.family))  # a bare template: the task's words
    tpl.value = "summary"
    assert words.value == "terrible, great"
    tpl.value = "plain"
    assert words.value == ", ".join(bk.get_task("sst2").words(lm.family))
    words.value = "bad, great"  # still editable by hand
    assert tpl.value == "plain" and words.value == "bad, great"


def test_the_calibration_explorer_redraws_for_each_template_method_and_lambda():
    import numpy as np
    import torch

    from bbtkit.course.explorers import calibrated_probs, draw_calibration

    lm = bk.tiny_model("gpt2")
    rows = [("good fun", 1), ("awful", 0), ("the best film", 1), ("boring", 0)]
    ex = bk.Examples([bk.Example(t, None, y) for t, y in rows], "toy")
    tasks = {"it was": bk.get_task("sst2").with_template("{text_a} it was {mask}", "causal", ("bad", "great")),
             "movie": bk.get_task("sst2").with_template("{text_a} the movie was {mask}", "causal", ("bad", "great"))}
    q = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    champion, contextual = bk.Calibration.from_logits(q), bk.Calibration.from_logits(q, "contextual")
    # λ rescales the champion's W and never changes its prediction
    for lam in (0.1, 1.0, 10.0):
        p = calibrated_probs(q, "champion", champion, contextual, lam)
        assert torch.equal(p.argmax(-1), champion.probs(q).argmax(-1))
    assert calibrated_probs(q, "champion", champion, contextual, 10).max() > calibrated_probs(q, "champion", champion, contextual, 1).max()
    axes = draw_calibration(tasks["it was"], q, [0, 1], "contextual", champion, contextual, 1.0, "it was")
    assert "accuracy" in axes[0].figure._suptitle.get_text()
    ui = bk.course.widgets.calibration_explorer(lm, tasks, ex, ex)
    controls = {c.description: c for c in ui.widget.children[:-1]}
    controls["template"].value = "movie"
    controls["method"].value = "none"
    controls["λ × default"].value = 3.0
    assert set(controls) == {"template", "method", "λ × default"} and np.isfinite(controls["λ × default"].value)


def test_the_board_explorer_reads_cached_runs(tmp_path):
    import numpy as np

    from bbtkit.course import leaderboard as lb
    from bbtkit.course.explorers import draw_board

    for method, seed, dev, test in [("bbt", 13, 0.6, 0.7), ("bbt", 42, 0.8, 0.75), ("bbtv2", 13, 0.9, 0.8)]:
        bk.Result(method=method, task="sst2", model="m", config={}, z=np.zeros((0, 1)), projections=[], n_tokens=0,
                  hidden=1, layers=[], num_layers=1, position="auto", test_metric=test,
                  history=[{"calls": 0, "dev_metric": 0.5}, {"calls": 20, "dev_metric": dev}]).save(
            tmp_path / "hand" / method / f"sst2-{seed}")
    (tmp_path / "hand" / lb.SETTING_FILE).write_text("{}")
    ax = draw_board(tmp_path, "sst2", ["bbt", "bbtv2"])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["BBT: test 72.5 ± 2.5", "BBTv2: test 80.0"]
    assert [t.get_text() for t in draw_board(tmp_path, "sst2", ["bbt"], seed=42).get_legend().get_texts()] == ["BBT: test 75.0"]
    ui = bk.course.widgets.board_explorer(tmp_path, ["sst2"], ["bbt", "bbtv2"])
    controls = {c.description: c for c in ui.widget.children[:-1]}
    controls["seed"].value = 13
    controls["methods"].value = ("bbtv2",)


def _button(ui):
    import ipywidgets as W
    for box in ui.children[:-1]:
        for child in box.children:
            if isinstance(child, W.Button):
                return child


def test_runners_show_the_notebooks_run_first_then_run_through_the_registry(monkeypatch, capsys):
    import dataclasses

    import matplotlib.pyplot as plt

    from bbtkit.data.splits import Example, Examples, Split

    lm = bk.tiny_model("llama")
    rows = [("good fun", 1), ("awful", 0), ("the best film", 1), ("boring", 0)]
    ex = Examples([Example(t, None, y) for t, y in rows], "toy")
    split = Split("sst2", 0, ex, ex, ex)
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(), popsize=4, budget=8, eval_every=4, intrinsic_dim=5)
    start = bk.run_bbt(lm, "sst2", split, cfg, display=False, evaluate_test=False)
    shown = []  # outside a kernel an Output widget captures nothing: record each figure as it is shown
    monkeypatch.setattr(plt, "show", lambda: shown.append(" ".join(t.get_text() for t in plt.gcf().findobj(
        lambda a: hasattr(a, "get_text"))) or "figure") or plt.close("all"))
    ui = bk.course.widgets.bbt_runner(lm, "sst2", split, cfg, start=start)
    assert len(shown) == 1 and "the run above (8 calls)" in shown[0]  # the start run, before any Run
    label = _button(ui).description
    assert "≈" in label and label.startswith("Run BBT (")              # its time, from the start's s/call
    ui.children[1].children[1].value = 2000                            # a larger budget: a longer estimate
    assert _button(ui).description != label
    ui.children[1].children[1].value = 20                              # budget (the slider starts at 20)
    _button(ui).click()
    assert len(shown) > 1 and "of 20 calls" in shown[-1]               # live curves of the new run
    assert "bbt on sst2" in capsys.readouterr().out
    bk.course.widgets.bbtv2_runner(lm, "sst2", split)
    bk.course.widgets.dfo_lora_tuner(lm, split)
    assert capsys.readouterr().out.count("Press Run") == 2


def test_the_optimizer_explorer_reads_the_cached_table_and_cuts_it_at_the_budget(tmp_path):
    import numpy as np

    from bbtkit.course import optimizer_table as ot
    from bbtkit.course.explorers import draw_optimizers

    for name, seed, late in [("cma", 13, 0.9), ("cma", 42, 0.7), ("DE", 13, 0.6)]:
        bk.Result(method="bbt", task="sst2", model="m", config={}, z=np.zeros((0, 1)), projections=[], n_tokens=0,
                  hidden=1, layers=[], num_layers=1, position="auto", test_metric=0.7, dev_metric=max(0.5, late),
                  api_calls=40, history=[{"calls": 0, "dev_metric": 0.5, "best_loss": None},
                                         {"calls": 20, "best_loss": 0.8, "dev_metric": None},
                                         {"calls": 40, "best_loss": 0.6, "dev_metric": late}]).save(
            tmp_path / "s" / name / f"sst2-{seed}")
    table = ot.load_table(tmp_path, "s", optimizers=("cma", "DE", "PSO"), tasks=("sst2",))
    assert set(table) == {"cma", "DE"} and table["cma"]["sst2"]["seeds"] == 2
    assert table["cma"]["sst2"]["dev"] == (0.9 + 0.7) / 2 and table["DE"]["sst2"]["calls"] == 40
    left, right = draw_optimizers(table, "sst2", ["cma", "DE"], 40, {"cma": "CMA-ES"})
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["CMA-ES (2)", "DE (1)"]
    assert [p.get_height() for p in right.patches] == [(0.9 + 0.7) / 2, 0.6]
    _, early = draw_optimizers(table, "sst2", ["cma", "DE"], 30)  # by 30 calls only the start's dev was seen
    assert [p.get_height() for p in early.patches] == [0.5, 0.5]
    ui = bk.course.widgets.optimizer_explorer(table, ["sst2"])
    controls = {c.description: c for c in ui.widget.children[:-1]}
    assert controls["API calls"].max == 40
    controls["optimizers"].value = ("DE",)
    controls["API calls"].value = 20
