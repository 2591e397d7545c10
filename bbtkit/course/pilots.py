"""A pilot: a short run of a registry method that measures, on this machine, model and task, the costs an
:class:`~bbtkit.course.estimates.Estimate` predicts a whole run from (``bbtkit.course.estimates`` says what each part holds).

``pilot`` runs the method for a few generations without the test set (``res.history`` records each step's
seconds), times one dev check and a slice of the test set apart, and takes the set-up as what is left of the
run's seconds once its own steps and dev checks, priced as the estimate prices them, are taken away.
"""
from __future__ import annotations

import dataclasses
import time
import warnings

import torch

from ..tuning import calibration as calib
from ..api.blackbox import BlackBoxLM, evaluate
from ..guards import PartialRoundWarning
from .estimates import Estimate
from ..methods.registry import get_method
from ..data.tasks import get_task


def pilot(method: str, model, task, split, cfg=None, calls: int | None = None, test_examples: int = 64) -> Estimate:
    """Measure a method's costs with a short run of it (``calls`` API calls, no test set; default two
    generations and a little: 2 x popsize + 2), one timed dev check and ``test_examples`` test examples.

    cfg: the config the real run will use (default: the registry's cpu_quick preset); the pilot runs it
    with ``budget=calls``, and with no dev check but the start's (timed apart instead). BBTv2 and AJO
    (3 x popsize + 3 calls): the pilot tunes the bottom prompted layer, the top one and the bottom again,
    AJO with a classifier phase before each; a layer's last generation gives its seconds per call."""
    t0, m, task = time.perf_counter(), get_method(method), get_task(task)
    cfg = cfg or m.preset(task.name, split.seed)
    changes, prompted = {}, _prompted_layers(m, cfg, model)
    if m.tunes:  # a layer-wise pilot: bottom, top and bottom again (its first generation pays the warm-up)
        pop = getattr(cfg, "popsize", 10)
        changes["budget"] = calls = calls or (3 * pop + 3 if len(prompted) > 1 else 2 * pop + 2)
        if hasattr(cfg, "eval_every"):
            changes["eval_every"] = calls + 1
    if len(prompted) > 1:
        changes["layers"] = (prompted[0], prompted[-1])
        changes.update({"phase_generations": 1} if hasattr(cfg, "phase_generations") else {})
    with warnings.catch_warnings():  # a pilot's budget is short on purpose
        warnings.simplefilter("ignore", PartialRoundWarning)
        res = m.run(model, task, split, dataclasses.replace(cfg, **changes), display=False, evaluate_test=False)
    costs = _call_costs(res, method, changes.get("layers", ())) if m.tunes else {"per_call": 0.0, "generation": 0}
    phase_every = (cfg.phase_generations or len(prompted)) if hasattr(cfg, "phase_generations") and prompted else 0
    est = Estimate(method, 0.0, per_dev=_time_dev(model, task, split, cfg, res) if m.tunes else 0.0,
                   per_test=_time_test(model, task, split.test[:test_examples], res) if len(split.test) else 0.0,
                   eval_every=getattr(cfg, "eval_every", None), n_test=len(split.test),
                   layers=changes.get("layers", ()), phase_every=min(phase_every, 1), **costs)
    if m.tunes:  # the set-up: what the pilot's run took beyond its own steps, as the estimate prices them
        steps = est._step_seconds(est.steps(calls))
        devs = sum(row.get("dev_metric") is not None for row in res.history)
        est = dataclasses.replace(est, setup=max(0.0, res.seconds - steps - devs * est.per_dev))
    else:
        est = dataclasses.replace(est, setup=max(0.0, res.seconds))
    return dataclasses.replace(est, layers=tuple(prompted) if est.per_call_top is not None else (),
                               phase_every=phase_every, pilot_seconds=time.perf_counter() - t0)


def _prompted_layers(m, cfg, model) -> list[int]:
    """BBTv2's and AJO's prompted layers (bottom to top); [] for any other method."""
    from ..methods.bbtv2 import run_bbtv2
    from ..methods.ajo import run_ajo
    if not m.tunes or m.run not in (run_bbtv2, run_ajo):
        return []
    return list(range(model.num_layers)) if cfg.layers is None else list(cfg.layers)


def _call_costs(res, method: str, layers: tuple[int, ...]) -> dict:
    """Estimate's call fields from a pilot's records: per_call, generation, start_calls; for a layer-wise
    pilot (its bottom and top layer) also per_call_top, cache_per_layer and per_phase. A generation's
    seconds less the layer cache's (``res.extra["cache_seconds"]``, spent moving up to the top layer)."""
    per_call, generation, start = _generations(res.history, method)
    out = {"per_call": per_call, "generation": generation, "start_calls": start}
    if not layers:
        return out
    bottom, top = layers
    cache = res.extra.get("cache_seconds", 0.0) / top if top else 0.0
    gens = {row["layer"]: row["seconds"] for row in res.history  # each layer's last generation: warm
            if row.get("layer") is not None and row.get("dev_metric") is None}
    phases = [row["seconds"] for row in res.history[1:] if row.get("phase") == "classifier" and row.get("dev_metric") is None]
    if bottom not in gens or top not in gens:
        raise ValueError(f"The pilot of {method} did not tune layers {bottom} and {top}. Give it more calls "
                         "(3 x popsize + 3: the bottom layer, the top one and the bottom again).")
    return {**out, "per_call": max(0.0, gens[bottom] - bottom * cache) / generation, "cache_per_layer": cache,
            "per_call_top": max(0.0, gens[top] - (top - bottom) * cache) / generation,
            "per_phase": sum(phases) / len(phases) if phases else 0.0}


def _generations(rows: list[dict], method: str) -> tuple[float, int, int]:
    """(seconds per call, calls per generation, calls before the first generation) from a run's records.
    The first record that spent calls carries the run's first-call costs (set-up) and is left out, as is
    any record with a dev check."""
    spent, last = [], 0  # (calls before, calls spent, seconds, dev checked) of each record that spent calls
    for row in rows:
        if row["calls"] > last:
            spent.append((last, row["calls"] - last, row["seconds"], row.get("dev_metric") is not None))
            last = row["calls"]
    generation = max((n for _, n, _, _ in spent), default=0)
    clean = [(n, s) for _, n, s, dev in spent[1:] if not dev]
    if not generation or not clean:
        raise ValueError(f"The pilot of {method} recorded {len(spent)} step(s) that spent calls, too few to time a "
                         "generation apart from the set-up. Give it more calls (at least 2 x popsize + 2).")
    start = next(before for before, n, _, _ in spent if n == generation)
    return sum(s for _, s in clean) / sum(n for n, _ in clean), generation, start


def _time_dev(model, task, split, cfg, res) -> float:
    """Seconds of one dev check as the run's dev score makes it: the dev set's forward under the prompt
    (formatted once before, as in the run) and the calibration's fit under it when the config calibrates."""
    prompt = res.prompt if torch.is_tensor(res.prompt) else None
    api = BlackBoxLM(model, task, split.dev, position=res.position)
    ask = (lambda: api(None if prompt is None else prompt[None], return_hidden=res.classifier is not None))
    ask()  # the first call formats the dev set and caches its context: set-up, in the run too
    t0 = time.perf_counter()
    ask()
    if getattr(cfg, "calibration", None):
        calib.for_prompt(cfg.calibration, model, task, split.train, prompt, res.position)
    return time.perf_counter() - t0


def _time_test(model, task, examples, res) -> float:
    """Seconds per example of the test evaluation the run would make (AJO's: its mixture's parts)."""
    t0 = time.perf_counter()
    if res.classifier is not None:
        from ..methods.ajo import evaluate_parts
        evaluate_parts(model, task, examples, res)
    else:
        evaluate(model, task, examples, res.prompt, position=res.position, calibration=res.calibration,
                 adapters=res.adapters)
    return (time.perf_counter() - t0) / len(examples)
