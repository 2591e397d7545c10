"""Progress that tells the truth: set-up kept out of the estimate, a bar that ends full when a run
stops for a good reason, plain lines in a log."""
import io

import numpy as np

import bbtkit as bk
from bbtkit.tuning.progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_set_up_time_stays_out_of_the_estimate():
    clock, out = Clock(), io.StringIO()
    p = Progress(300, "bbt sst2", stream=out, clock=clock, mode="log", every=0)
    clock.t = 60.0                      # a minute of set-up before the first generation is done
    p.update(10)
    assert p.remaining() is None        # no rate yet: one point is not a rate
    clock.t = 61.0
    p.update(10)                        # 10 calls a second since set-up ended
    assert abs(p.remaining() - 28.0) < 1e-9
    assert "about 28 s left" in out.getvalue().splitlines()[-1]


def test_a_log_gets_plain_periodic_lines_and_a_last_one():
    clock, out = Clock(), io.StringIO()
    p = Progress(100, "ajo sst2", stream=out, clock=clock, mode="log", every=30)
    for k in range(10):
        clock.t = 10.0 * (k + 1)
        p.update(10)
    p.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 4 + 1          # t = 10, 40, 70, 100, then the closing line
    assert lines[-1].startswith("ajo sst2: 100/100 calls")


def test_a_bar_ends_full_when_the_run_stops_for_a_good_reason_and_short_when_cut():
    for ok, total in ((True, 291), (False, 300)):
        p = Progress(300, "x", stream=io.StringIO(), mode="terminal")
        p.update(291)
        p.close(ok=ok)
        assert (p.n, p.total, p.bar.total) == (291, total, total)


def test_tune_closes_its_progress_full_at_the_budget_and_short_on_ctrl_c(monkeypatch):
    closed = []
    real_close = Progress.close

    def spy(self, ok=True):
        real_close(self, ok)
        closed.append((ok, self.n, self.total))

    monkeypatch.setattr(Progress, "close", spy)
    opt = bk.optimizers.CMA(3, 0.5, 10, seed=0)
    bk.tune(lambda X: np.sum(np.asarray(X) ** 2, 1), opt, budget=95, display=True)  # 9 generations fit, not 10
    assert closed[-1] == (True, 90, 90)

    def stop(X):
        raise KeyboardInterrupt

    bk.tune(stop, bk.optimizers.CMA(3, 0.5, 10, seed=0), budget=95, display=True)
    assert closed[-1] == (False, 0, 95)


def test_outside_a_kernel_the_mode_follows_the_stream():
    from bbtkit.tuning.progress import _mode
    assert _mode(io.StringIO()) == "log"


def test_in_a_kernel_the_bar_is_tqdms_notebook_bar(monkeypatch):
    """tqdm.auto's class is a subclass defined in tqdm.auto, so its module name says nothing: the check
    is whether autonotebook picked something other than the plain tqdm."""
    from tqdm import autonotebook, std
    from bbtkit.tuning.progress import _mode

    class NotebookBar(std.tqdm):
        pass

    monkeypatch.setattr(autonotebook, "tqdm", NotebookBar)
    assert _mode(io.StringIO()) == "notebook"


def test_track_counts_items_and_closes_full_or_short():
    from bbtkit.tuning.progress import track
    out = io.StringIO()
    assert list(track("abc", "letters", stream=out, mode="log", every=0)) == ["a", "b", "c"]
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("letters: 3/3 items") and "stopped early" not in lines[-1]
    out = io.StringIO()
    for item in track(range(5), "numbers", stream=out, mode="log", every=0):
        if item == 2:
            break
    import gc
    gc.collect()  # a generator left by break is closed when collected: its bar ends short
    assert out.getvalue().splitlines()[-1].startswith("numbers: 2/5 items") and "stopped early" in out.getvalue()
