"""Progress that tells the truth: a bar in a notebook or a terminal, plain lines in a log.

* The time before the first unit is done (loading, tokenising, caches) is set-up, not work: the
  estimate of what is left uses only the time since then.
* A run that ends early for a good reason (the optimizer converged, the next generation would not fit
  the budget) closes its bar full; only an interrupted or failed run leaves it short (red in a notebook).
* Where stderr is not a terminal (a log file, CI), a line is printed at most every ``every`` seconds,
  with no carriage returns.
"""
from __future__ import annotations

import sys
import time


def _format(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class Progress:
    """``update(n)`` adds n units; ``set_postfix(**fields)``; ``close(ok)``. ``n``, ``total`` as tqdm's."""

    def __init__(self, total: int, desc: str, unit: str = "call", every: float = 30.0, stream=None,
                 clock=time.perf_counter, mode: str | None = None):
        self.total, self.desc, self.unit, self.every, self.clock = int(total), desc, unit, every, clock
        self.stream = stream if stream is not None else sys.stderr
        self.n, self.postfix = 0, ""
        self.started = clock()
        self.first = None  # (time, n) when the first units were done: the end of set-up
        self.printed = None
        self.mode = mode or _mode(self.stream)
        self.bar = None
        if self.mode != "log":
            from tqdm.auto import tqdm
            self.bar = tqdm(total=self.total, desc=desc, unit=unit, leave=False, file=self.stream,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def remaining(self) -> float | None:
        """Seconds left at the rate since set-up ended (None until there is such a rate)."""
        if self.first is None or self.n <= self.first[1]:
            return None
        rate = (self.n - self.first[1]) / max(self.clock() - self.first[0], 1e-9)
        return max(self.total - self.n, 0) / rate

    def update(self, k: int = 1) -> None:
        if k <= 0:
            return
        self.n += k
        if self.first is None:
            self.first = (self.clock(), self.n)
        self._show()

    def set_postfix(self, **fields) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in fields.items())
        self._show()

    def _tail(self) -> str:
        left = self.remaining()
        parts = ([f"about {_format(left)} left"] if left is not None else []) + ([self.postfix] if self.postfix else [])
        return ", ".join(parts)

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.n = self.n
            self.bar.set_postfix_str(self._tail(), refresh=True)
            return
        now = self.clock()
        if self.printed is None or now - self.printed >= self.every:
            self._line()
            self.printed = now

    def _line(self, end: str = "") -> None:
        tail = self._tail()
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}s, {_format(self.clock() - self.started)}"
              + (f", {tail}" if tail else "") + end, file=self.stream, flush=True)

    def close(self, ok: bool = True) -> None:
        """ok: the run ended for a good reason, so the bar ends full even short of its total."""
        if ok and self.n < self.total:
            self.total = self.n
            if self.bar is not None:
                self.bar.total = self.n
        if self.bar is not None:
            self.bar.n = self.n
            self.bar.refresh()
            self.bar.close()
        else:
            self._line(end="" if ok else " (stopped early)")


def _mode(stream) -> str:
    """'notebook' (an IPython kernel: tqdm's widget bar), 'terminal', or 'log' (plain lines)."""
    from tqdm import autonotebook, std
    if autonotebook.tqdm is not std.tqdm:  # tqdm found a kernel with widgets: its notebook bar
        return "notebook"
    return "terminal" if getattr(stream, "isatty", lambda: False)() else "log"


def track(items, desc: str, unit: str = "item", **kwargs):
    """Iterate over items with a :class:`Progress` (for long loops in a notebook: templates, tasks,
    seeds). The bar closes full when the loop ends, short (red) when it is interrupted or fails."""
    items = list(items)
    bar = Progress(len(items), desc, unit, **kwargs)
    ok = False
    try:
        for item in items:
            yield item
            bar.update(1)
        ok = True
    finally:
        bar.close(ok)
