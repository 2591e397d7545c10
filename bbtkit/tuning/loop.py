"""The one tuning loop. Every method hands it the same pieces:

* ``evaluate(X) -> (losses, train metrics)``: a space, the API and an objective composed; for BBT
  ``objective(api(space.candidates(X)))``;
* an optimizer (``bbtkit.optim.optimizers``) with ``ask``/``tell``/``stop``;
* a dev score ``dev(z) -> metric`` for model selection (the starting point competes: a tuned z must
  be strictly better on dev, and with ``select_se > 0`` better than the start by more than that many
  standard errors of the start's dev score, ``bbtkit.tuning.selection``);

and the loop owns the rest: the budget in API calls, a record per generation, dev selection every
``eval_every`` calls, the progress bar, callbacks, checkpoints, resuming and the stop reasons. Its
heart is the loop every chapter shows::

    while not opt.stop():
        X = opt.ask()
        opt.tell(X, evaluate(X)[0])

A stopped run keeps what it found: Ctrl-C, ``BudgetExceededError``, a class server that stops answering,
a candidate with NaN logits or an exception in a callback end the loop, and the trace (best z so far, history) is returned with ``stop`` saying why.
``checkpoint="file"`` writes the run's state every few generations, atomically; ``resume="file"``
rebuilds it without an API call (the optimizer is told the recorded losses again, which rebuilds
its state exactly) and goes on, to the same end as a run never stopped. A ``resume`` file that does not
exist yet starts a new run, so that ``checkpoint=f, resume=f`` serves the first start and every restart;
one of another run (model, dtype, task, split or config), or one edited by hand, is refused. A checkpoint
that cannot be written (a full disk, a folder in the way) ends the run with what it found, the reason in
``stop["checkpoint error"]`` (``bbtkit.tuning.checkpoints`` holds the file format).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import calibration as calib, checkpoints as ckpt
from ..api.blackbox import BudgetExceededError, evaluate as evaluate_prompt
from ..api.remote import ServerUnavailableError
from ..guards import NonFiniteLogitsError
from .result_builder import build_result
from .results import Result
from .selection import Selection


@dataclass
class Trace:
    """What a run recorded, and what every callback receives, for every method.

    history: one dict per generation (calls, best_loss, mean_loss, train_metric, sigma, dev_metric,
    seconds, and the optimizer's own: layer, round, incumbent_loss); best_z: the z selected by the
    best dev metric (or the lowest loss without dev), so far; stop: why the run ended.
    """

    history: list[dict] = field(default_factory=list)
    best_z: np.ndarray | None = None
    best_dev: float = -np.inf
    best_loss: float = np.inf
    calls: int = 0
    budget: int = 0
    stop: dict = field(default_factory=dict)
    interrupted: bool = False
    best_state: dict | None = None  # what the optimizer's other phase had learned at the best dev (AJO: f)
    dev_z: np.ndarray | None = None  # the z the last dev score was computed at (not a copy)
    selection: dict = field(default_factory=dict)  # how best_z was chosen against the start (bbtkit.tuning.selection)

    @property
    def last(self) -> dict | None:
        return self.history[-1] if self.history else None

    def column(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(calls, values) of one recorded quantity, skipping generations where it is absent."""
        rows = [h for h in self.history if h.get(key) is not None]
        return np.array([h["calls"] for h in rows]), np.array([h[key] for h in rows], dtype=float)


class _Counter:
    """API calls spent: the API's own count, or one call per candidate when there is no API."""

    def __init__(self, api):
        self.api, self.own = api, 0

    def __call__(self) -> int:
        return self.api.calls if self.api is not None else self.own

    def set(self, calls: int) -> None:
        if self.api is not None:
            self.api.calls = calls
        self.own = calls


def _pair(out) -> tuple:
    """(losses, train metrics or None) from what ``evaluate`` returned: a pair, or the losses alone."""
    return out if isinstance(out, tuple) else (out, None)


def tune(evaluate: Callable, opt, *, budget: int, api=None, dev: Callable | None = None,
         eval_every: int | None = None, callback: Callable | None = None, display: bool = False, desc: str = "tuning",
         checkpoint: str | Path | None = None, checkpoint_every: int = 1, resume: str | Path | None = None,
         fingerprint: dict | None = None, select_se: float = 0.0) -> Trace:
    """Run ``opt`` on ``evaluate`` within ``budget`` API calls; return the :class:`Trace`.

    api: the training ``BlackBoxLM`` whose calls count (else one call per candidate).
    Optimizers with ``rescore`` (layer-wise CMA-ES) need their starting point's loss: the loop spends one
    call on it. An optimizer with an ``interlude`` (``optim.alternating.Alternating``: AJO's classifier
    phase) runs it instead, first and whenever it is ``due()``; it may spend ``interlude_calls`` calls and
    returns a record and the incumbent's new loss. What it learns (``opt.learned``: ``state()``,
    ``load_state(state)``, ``snapshot()``) goes into checkpoints, and its ``snapshot()`` is kept with the
    best dev (``Trace.best_state``).
    callback(trace) runs after every generation. fingerprint: the config, which a resumed run must match
    (as well as the api's model, dtype, task and examples, and the dev scorer's examples).
    select_se: a tuned z replaces the start only when its dev score beats the start's by more than
    select_se standard errors of a proportion on the dev set (``bbtkit.tuning.selection``; 0: strictly better).
    """
    ckpt.check_path(checkpoint, "checkpoint")
    ckpt.check_path(resume, "resume")
    owner = ckpt.owner(api, dev, fingerprint) if checkpoint is not None or resume is not None else None
    trace, count = Trace(budget=budget), _Counter(api)
    rule = Selection(select_se, dev)
    events: list[dict] = []  # what the optimizer was told, in order: replayed on resume
    # what a checkpoint needs besides the events; "clean": no step is half done (a Ctrl-C inside an API
    # call or a classifier phase leaves the previous checkpoint, which is consistent, in place)
    state = {"next_dev": eval_every or 0, "calls": 0, "clean": True, "best_is_start": True}
    needs_incumbent = hasattr(opt, "rescore")
    interlude = getattr(opt, "interlude", None)
    learned = getattr(opt, "learned", None)

    def consider(row: dict, z, force: bool = False) -> None:
        if dev is None or not (force or (eval_every and count() >= state["next_dev"])):
            return
        if eval_every:
            state["next_dev"] = (count() // eval_every + 1) * eval_every
        row["dev_metric"], trace.dev_z = float(dev(z)), z
        is_start = not trace.history
        if rule.replaces(row["dev_metric"], trace.best_dev, None if is_start else trace.history[0].get("dev_metric")):
            trace.best_dev, trace.best_z = row["dev_metric"], np.array(z, dtype=float)
            trace.best_state = learned.snapshot() if learned is not None else None
            state["best_is_start"] = is_start

    def finish_row(row: dict, t0: float) -> None:
        row["seconds"] = time.perf_counter() - t0
        trace.history.append(row)
        trace.calls = state["calls"] = count()
        state["clean"] = True
        if bar is not None:
            bar.update(trace.calls - bar.n)
            bar.set_postfix(loss=f"{row['best_loss']:.3f}" if row.get("best_loss") is not None else "-",
                            dev="-" if trace.best_dev == -np.inf else f"{trace.best_dev:.3f}")

    def do_interlude() -> None:
        t0, state["clean"], first = time.perf_counter(), False, not trace.history
        row, loss = interlude()
        opt.rescore(loss)
        events.append({"rescore": float(loss)})
        consider(row, opt.start if first else opt.selected, force=first)
        finish_row(row, t0)

    def save() -> bool:  # False: the checkpoint could not be written, and the run stops with what it found
        try:
            ckpt.save(Path(checkpoint), trace, events, state, learned, owner)
        except OSError as err:
            trace.stop["checkpoint error"] = ckpt.write_failure(checkpoint, err)
            return False
        return True

    bar = progress_bar(budget, desc) if display else None
    try:
        if resume is not None and Path(resume).exists():
            ckpt.restore(ckpt.load(Path(resume), owner), opt, trace, events, state, count, learned)
        else:
            t0, state["clean"] = time.perf_counter(), False
            if interlude is not None:
                do_interlude()
            elif needs_incumbent or dev is not None:  # the starting point's record
                row = {"calls": 0, "best_loss": None, "mean_loss": None, "train_metric": None,
                       **getattr(opt, "start_info", opt.info)(), "dev_metric": None}
                if needs_incumbent:  # the starting point's loss: the incumbent to beat
                    losses, metrics = _pair(evaluate(opt.start[None]))
                    opt.rescore(losses[0])
                    events.append({"rescore": float(losses[0])})
                    row.update(calls=count(), best_loss=float(losses[0]), mean_loss=float(losses[0]),
                               incumbent_loss=float(losses[0]),
                               train_metric=None if metrics is None else float(np.asarray(metrics)[0]))
                consider(row, opt.start, force=True)
                finish_row(row, t0)
        while not opt.stop():
            if interlude is not None and opt.due():
                if count() + opt.interlude_calls + opt.popsize > budget:
                    break
                do_interlude()
            if count() + opt.popsize > budget:
                break
            t0, state["clean"] = time.perf_counter(), False
            X = opt.ask()
            losses, metrics = _pair(evaluate(X))
            losses = np.asarray(losses, dtype=float)
            opt.tell(X, losses)
            events.append({"tell": losses.tolist()})
            count.own += len(X)
            b = int(np.argmin(losses))
            row = {"calls": count(), "best_loss": float(losses[b]), "mean_loss": float(losses.mean()),
                   "train_metric": None if metrics is None else float(np.asarray(metrics)[b]),
                   **opt.info(), "dev_metric": None}
            if losses[b] < trace.best_loss:
                trace.best_loss = float(losses[b])
                if dev is None:
                    trace.best_z = np.array(opt.selected, dtype=float)
            consider(row, opt.selected)
            finish_row(row, t0)
            if checkpoint is not None and len(events) % checkpoint_every == 0 and not save():
                break
            if callback is not None:
                try:
                    callback(trace)
                except Exception as err:  # noqa: BLE001  (a broken live plot must not lose the run)
                    trace.stop = {"callback error": f"{type(err).__name__}: {err}"}
                    break
    except KeyboardInterrupt:
        trace.stop, trace.interrupted = {"interrupted": "KeyboardInterrupt (Ctrl-C)"}, True
    except ServerUnavailableError as err:  # a class server that went away: as Ctrl-C, the checkpoint resumes it
        trace.stop, trace.interrupted = {"interrupted": "server unavailable", "server unavailable": str(err)}, True
    except BudgetExceededError as err:
        trace.stop = {"budget error": str(err)}
    except NonFiniteLogitsError as err:  # a diverged candidate: the run ends with the best found before it
        trace.stop = {"non-finite logits": str(err)}
    finally:
        if bar is not None:  # full when the run ended for a good reason, short when it was cut
            bar.close(ok=sys.exc_info()[0] is None and not trace.interrupted
                      and not {"budget error", "callback error", "checkpoint error", "non-finite logits"} & set(trace.stop))
    trace.calls = count()
    if not trace.stop:
        trace.stop = opt.stop() or {"budget": f"{trace.calls} of {budget} calls used"}
    trace.stop.update(getattr(opt, "summary", dict)())
    if trace.best_z is None:  # nothing selected (no generation ran): where the optimizer stands
        trace.best_z = np.asarray(opt.final(), dtype=float)
    trace.selection = rule.record(trace.history, trace.best_dev, state["best_is_start"])
    if checkpoint is not None and state["clean"] and "checkpoint error" not in trace.stop:
        try:
            save()
        except KeyboardInterrupt:  # the run's best is in hand: return it, the previous checkpoint stays
            trace.stop["interrupted"] = "KeyboardInterrupt (Ctrl-C) while writing the checkpoint"
            trace.interrupted = True
    return trace


def to_result(method: str, model, task, split, cfg, space, trace: Trace, train, t0: float, *,
              evaluate_test: bool = True, extra: dict | None = None, classifier=None, score_test=None) -> Result:
    """The :class:`Result` of a run: the selected z in its space, the records, the calibration that goes
    with the prompt (when the config has one) and the test metric (not after Ctrl-C: the user is
    waiting; ``bk.evaluate(model, task, split.test, res.prompt)`` gives it later).

    score_test(res, model, task, split) replaces the plain test metric (AJO scores its mixture)."""
    z = np.asarray(trace.best_z, dtype=float).reshape(len(space.layers), -1)
    res = build_result(method, model, task, cfg, z=z, space=space, position=train.position, history=trace.history,
                       dev=trace.best_dev, calls=train.calls, stop=trace.stop, classifier=classifier,
                       extra={"seconds_per_call": train.seconds_per_call, "space": space.kind, **(extra or {})},
                       selection=trace.selection)
    if getattr(cfg, "calibration", None) and "server unavailable" not in trace.stop:
        res.extra["calibration"] = calib.for_prompt(cfg.calibration, model, task, split.train, res.prompt,
                                                    res.position).to_dict()
    if evaluate_test and not trace.interrupted:
        if score_test is not None:
            score_test(res, model, task, split)
        else:
            res.test_metric = evaluate_prompt(model, task, split.test, res.prompt, position=res.position,
                                              calibration=res.calibration, adapters=res.adapters)
    res.seconds = time.perf_counter() - t0
    return res


def progress_bar(total: int, desc: str, unit: str = "call"):
    """Progress over API calls (a widget in Jupyter, a bar in a terminal, plain lines in a log; see
    ``bbtkit.tuning.progress``); a bar is cleared when done."""
    from .progress import Progress
    return Progress(total, desc, unit)
