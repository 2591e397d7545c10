"""Runs that chapters share, made once: ``run_or_load(bk.run_bbt, lm, task, split, cfg, path)`` returns the run
saved at ``path`` when it is the same run, and otherwise runs it and saves it.

"The same run" is checked, never assumed: the saved result carries a fingerprint (the run function, the
model and its dtype, the task's definition, digests of the train, dev and test examples, and the config),
and a run is loaded only when every part equals the one asked for. A different run (a changed budget, the
smoke test's small sets, another seed) is run and saved beside the shared one, under ``local/``, so that the
committed run is never overwritten by a student's variation and a repeat of the variation loads at once.

Runs are deterministic given their fingerprint (seeded optimizer, fixed examples, fp32) on one kind of CPU, so
a loaded run is the run the cell computes on the machine that made it, which the line a loaded run prints names
(with the command that made it and how long it took). Another CPU rounds fp32 sums differently in the last bits
(other matrix kernels), and over hundreds of calls the optimizer can take another path from there: ``fresh=True``
computes the run on yours, with numbers close to, not equal to, the loaded ones. Each run records the manual prompt's test metric
(``Result.manual_test``) beside its own, so that a chapter need not evaluate the manual prompt again.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from ..checksums import as_json, examples_digest, json_digest
from ..tuning.result_builder import load_result
from ..tuning.results import Result
from ..runtime import describe

LOCAL = "local"  # beside a shared run: the variations of it that this checkout ran (not committed)


def fingerprint(run, model, task, split, cfg) -> dict:
    """What decides a run's numbers: the run function, the model (name and shape) and its dtype, the task's definition,
    the split's examples (digests) and the config."""
    spec = task.to_dict()
    spec.pop("description", None)  # words for people: changing them changes no run
    return as_json({"run": getattr(run, "__name__", str(run)),
                    "model": {"name": str(model.name), "layers": model.num_layers, "hidden": model.hidden_size},
                    "dtype": str(model.dtype).removeprefix("torch."), "task": spec,
                    "split": {part: examples_digest(getattr(split, part, None)) for part in ("train", "dev", "test")},
                    "config": {"class": type(cfg).__name__, **dataclasses.asdict(cfg)}})


def differs(saved: Result, want: dict, cfg=None) -> str | None:
    """Why a saved run is not the one wanted (the first part that differs), or None when it is.

    With the wanted ``cfg``, its config is compared by ``same_config``."""
    have = saved.extra.get("fingerprint")
    if not have:
        return "it records no fingerprint"
    for part in ("run", "model", "dtype", "task", "split", "config"):
        mine = have.get(part)
        if part == "config" and cfg is not None and isinstance(mine, dict):
            if not same_config(mine, want[part], cfg):
                return "its config differs"
        elif mine != want[part]:
            return f"its {part} differs"
    return None


def same_config(saved: dict, want: dict, cfg) -> bool:
    """Whether a saved config equals ``want`` (``cfg`` as JSON). A field the saved one does not record (added
    to the config class since) counts as equal when the wanted value is the field's default: a field is only
    ever added with the default that does what the package did before it existed (``BBTConfig.optimizer``)."""
    added = {k: v for k, v in want.items() if k not in saved and v == _default(cfg, k)}
    return {**added, **saved} == want


def _default(cfg, name: str):
    """The default of dataclass cfg's field ``name`` as a fingerprint holds it (a sentinel when it has none)."""
    for f in dataclasses.fields(cfg):
        if f.name == name and f.default is not dataclasses.MISSING:
            return as_json(f.default)
    return object()


def run_or_load(run, model, task, split, cfg, path, *, fresh: bool = False, made_by: str | None = None,
                display: bool = True, quiet: bool = False, **kw) -> Result:
    """The run ``run(model, task, split, cfg, display=display, **kw)`` (any ``bk.run_*``), loaded from
    ``path`` when the result saved there is the same run; else computed, given the manual prompt's test
    metric, and saved (at ``path`` when nothing is there or ``fresh``, else beside it under ``local/``).

    made_by: the command that made the shared run (``benchmarks/chapter_runs.py``), named when it loads;
    quiet: no line when it loads (a cell that loads many says so once)."""
    path = Path(path)
    want = fingerprint(run, model, task, split, cfg)
    local = path.parent / LOCAL / f"{path.name}-{json_digest(want)[:10]}"
    if not fresh:
        for where in (path, local):
            if (where / "result.json").exists():
                res = load_result(where)
                if differs(res, want, cfg) is None:
                    if not quiet:
                        _say_loaded(res, where, made_by)
                    return res
    t0 = time.perf_counter()
    res = run(model, task, split, cfg, display=display, **kw)
    seconds = time.perf_counter() - t0
    if res.manual_test is None and len(split.test):
        from ..api.blackbox import evaluate  # the manual prompt (z = 0, no adapters) on the same test set
        res.extra["manual_test"] = evaluate(model, task, split.test)
    res.extra.update(fingerprint=want, test_size=len(split.test), made_on=describe(),
                     made_by=made_by or "a notebook cell", minutes_with_test=round(seconds / 60, 2))
    target = path if fresh or not (path / "result.json").exists() else local
    res.save(target, overwrite=True)
    return res


def _say_loaded(res: Result, where: Path, made_by: str | None) -> None:
    shown = Path(*where.parts[-3:])
    made = res.extra.get("made_by") or made_by or "an earlier run"
    cpu = str(res.extra.get("made_on", "")).partition("CPU ")[2].partition(";")[0] or "this machine"
    print(f"Loaded {shown}: the same run, made by {made} in {res.extra.get('minutes_with_test', res.seconds / 60):.1f} min "
          f"on {cpu}. Pass fresh=True to compute it again here.")
