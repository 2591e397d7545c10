"""A competition-style leaderboard: every method on the competition's five tasks, cached per run.

The 1st Gradient-Free Tuning Competition scored SST-2, DBPedia, SNLI, QQP and QNLI (accuracy;
macro-F1 for SNLI and DBPedia). Each (method, task, seed) run is saved under
``runs/leaderboard/<setting>/<method>/<task>-<seed>/`` as a :class:`~bbtkit.tuning.results.Result`, so that
a long table is computed once, piece by piece, and a notebook loads it in a second: ``run_entry``
computes one cell unless it is cached, ``load_leaderboard`` reads them all. The *setting* names what
else decides the numbers: the model, its dtype, the test size and the budget scale
(``smollm2-135m_float32_test500_scale0.1``), so that a cache never answers for another model.

Budgets are the report's (3000 calls for SST-2 and DBPedia, 8000 for the others) scaled by
``scale`` (CPU default 1/10): the ratio between tasks is kept.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np

from ..methods.baselines import demonstrations  # noqa: F401  (the leaderboard's in-context rows use it)
from ..methods.registry import METHODS, get_method, paper_budget
from ..tuning.result_builder import load_result
from ..tuning.results import Result, calls_to_reach
from ..data.tasks import get_task
from ..data.splits import check_seed

TASKS = ("sst2", "dbpedia", "snli", "qqp", "qnli")
SEEDS = (13, 42, 100)
ROWS = {name: m.label for name, m in METHODS.items()}  # name -> the row label of notebook 07
ROOT = Path(__file__).resolve().parents[2] / "runs" / "leaderboard"
CPU_SCALE = 0.1
TEST_SIZE = 500  # a fixed test subset per task (seed 0), so that a CPU table stays affordable
CPU_SETTING = "smollm2-135m_float32_test500_scale0.1"  # the committed table's: the embedded model in fp32
SETTING_FILE = "setting.json"


def budget(task: str, scale: float = CPU_SCALE) -> int:
    """The report's API budget for task (``ajo.paper_budget``: 8000 for a task it did not run), times
    scale, rounded to whole generations of 10."""
    return max(20, int(round(paper_budget(task) * scale / 10)) * 10)


def config(method: str, task: str, seed: int, scale: float = CPU_SCALE):
    """The config of one entry: the registry's cpu_quick preset (paper preset when scale >= 1) with
    the scaled budget."""
    return get_method(method).preset(get_task(task).name, seed, paper=scale >= 1, budget=budget(task, scale))


def setting(model, scale: float = CPU_SCALE, test_size: int | None = TEST_SIZE) -> str:
    """The cache folder's name for what decides a cell's numbers besides method, task and seed:
    the model's name, its dtype, the test size and the budget scale."""
    return setting_for(str(model.name), str(model.dtype), scale, test_size)


def setting_for(name: str, dtype: str, scale: float = CPU_SCALE, test_size: int | None = TEST_SIZE) -> str:
    """``setting`` from a model's name and dtype (``"float32"``, ``"torch.bfloat16"``), without the model:
    what a driver that loads no model (the Ray fan-out) needs."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", name).strip("-.")[-48:] or "model"
    if slug != name:  # hub names with "/" and local paths: a short hash keeps two apart
        slug += "-" + hashlib.sha1(name.encode()).hexdigest()[:6]
    dtype = dtype.removeprefix("torch.")
    return f"{slug}_{dtype}_test{'all' if test_size is None else int(test_size)}_scale{float(scale):g}"


def entry_path(root: str | Path, key: str, method: str, task: str, seed: int) -> Path:
    """Where one cell is cached: ``root/<setting>/<method>/<task>-<seed>``."""
    return Path(root) / key / method / f"{get_task(task).name}-{seed}"


def _check_entry(method: str, seed, scale: float) -> int:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; the leaderboard's methods are {', '.join(ROWS)}.")
    if not scale > 0:
        raise ValueError(f"scale must be a positive fraction of the report's budgets, not {scale!r}.")
    return check_seed(seed)


def run_entry(model, method: str, task: str, seed: int, *, scale: float = CPU_SCALE, test_size: int | None = TEST_SIZE,
              root: str | Path = ROOT, recompute: bool = False, display: bool = False) -> Result:
    """One leaderboard cell: loaded from ``root/<setting>/`` when cached there (unless ``recompute``),
    else run and saved there. Tuned methods keep their history, so calls to a dev target can be read later."""
    seed = _check_entry(method, seed, scale)
    path = entry_path(root, setting(model, scale, test_size), method, task, seed)
    if (path / "result.json").exists() and not recompute:
        res = load_result(path)
        if res.model != model.name:
            raise ValueError(f"{path} holds a result of {res.model}, not {model.name}; the folder was moved by "
                             "hand. Move it back, or pass recompute=True to replace it.")
        return res
    res = compute_entry(model, method, task, seed, scale=scale, test_size=test_size, display=display)
    save_entry(res, seed, test_size, root)
    return res


def compute_entry(model, method: str, task: str, seed: int, *, scale: float = CPU_SCALE,
                  test_size: int | None = TEST_SIZE, display: bool = False) -> Result:
    """Run one cell, not cached: its ``Result``, with the setting it belongs to in ``extra["setting"]``
    (what a Ray worker sends back for the driver to save)."""
    from ..data.splits import load_split

    seed = _check_entry(method, seed, scale)
    t = get_task(task)
    split = load_split(t.name, seed=seed, test_size=test_size)
    t0 = time.perf_counter()
    res = METHODS[method].run(model, t, split, config(method, t.name, seed, scale), display=display)
    res.method, res.seconds = method, time.perf_counter() - t0
    res.extra.update(test_size=len(split.test), scale=scale, device=model.device.type,
                     dtype=str(model.dtype).removeprefix("torch."), setting=setting(model, scale, test_size))
    return res


def save_entry(res: Result, seed: int, test_size: int | None = TEST_SIZE, root: str | Path = ROOT) -> Path:
    """Save a computed cell (atomically) where ``run_entry`` looks for it, and the setting's
    ``setting.json`` (what the folder's name stands for, read by ``settings``) if missing."""
    key, folder = res.extra["setting"], Path(root) / res.extra["setting"]
    if not (folder / SETTING_FILE).exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (SETTING_FILE + ".tmp")
        tmp.write_text(json.dumps({"model": res.model, "dtype": res.extra["dtype"],
                                   "test_size": test_size, "scale": res.extra["scale"]}) + "\n")
        tmp.replace(folder / SETTING_FILE)
    return res.save(entry_path(root, key, res.method, res.task, seed), overwrite=True)


def settings(root: str | Path = ROOT) -> list[str]:
    """The settings cached under root (folders holding a ``setting.json``)."""
    root = Path(root)
    return sorted(p.parent.name for p in root.glob(f"*/{SETTING_FILE}")) if root.is_dir() else []


def _folder(root: str | Path, setting: str | None) -> Path:
    """root/<setting>: the one given; else the only one cached; else the CPU default's when several are."""
    found = settings(root)
    if setting is None:
        if len(found) <= 1 or CPU_SETTING in found:
            setting = found[0] if len(found) == 1 else CPU_SETTING
        else:
            raise ValueError(f"{root} caches several settings: {', '.join(found)}. Pass setting=... to pick one.")
    return Path(root) / setting


def cached_runs(root: str | Path, method: str, task: str, setting: str | None = None) -> dict[str, Result]:
    """The cached runs of one leaderboard cell, keyed by their folder name ``<task>-<seed>``."""
    folder = _folder(root, setting) / method
    return {p.name: load_result(p) for p in sorted(folder.glob(f"{get_task(task).name}-*")) if (p / "result.json").exists()}


def load_leaderboard(root: str | Path = ROOT, stats: bool = False, setting: str | None = None) -> dict:
    """{method: {task: mean test metric}} over the seeds cached under root, in ``setting`` (by default
    the only one there; see ``settings``), method names as in ``ROWS`` (notebook 07's rows).
    stats=True gives {method: {task: {"mean", "std", "seeds", "calls", "minutes"}}} instead."""
    table: dict[str, dict] = {}
    for method in ROWS:
        for task in TASKS:
            runs = list(cached_runs(root, method, task, setting).values())
            if not runs:
                continue
            metrics = np.array([r.test_metric for r in runs], dtype=float)
            entry = {"mean": float(metrics.mean()), "std": float(metrics.std()), "seeds": len(runs),
                     "calls": float(np.mean([r.api_calls for r in runs])),
                     "minutes": float(np.mean([r.seconds for r in runs]) / 60)}
            table.setdefault(method, {})[task] = entry if stats else entry["mean"]
    return table


def calls_to_target(root: str | Path, method: str, task: str, above: str = "manual",
                    margin: float = 0.05, setting: str | None = None) -> list[int | None]:
    """Per seed cached for both: API calls after which ``method``'s dev metric first reached the dev
    metric of ``above``'s run on the same seed plus ``margin`` (at most 1.0); None: never."""
    reference = cached_runs(root, above, task, setting)
    return [calls_to_reach(res.history, min(1.0, reference[name].dev_metric + margin))
            for name, res in cached_runs(root, method, task, setting).items() if name in reference]


def speedup(root: str | Path, method: str, baseline: str, task: str,
            setting: str | None = None) -> list[tuple[int | None, int | None]]:
    """The report's speed-up, per seed cached for both: the best dev metric ``baseline`` reached in
    its run is the target, and the pair is (calls baseline took to first reach it, calls method took;
    None: never). Their ratio is how many times fewer calls ``method`` needed. Dev is measured every
    ``eval_every`` calls, so a count is exact to that step."""
    others = cached_runs(root, method, task, setting)
    pairs = []
    for name, base in cached_runs(root, baseline, task, setting).items():
        if name not in others:
            continue
        target = max(r["dev_metric"] for r in base.history if r.get("dev_metric") is not None)
        pairs.append((calls_to_reach(base.history, target), calls_to_reach(others[name].history, target)))
    return pairs


COST_WEIGHT = 0.05  # lambda: a whole budget of calls costs 5 points of the metric


def composite(test_metric: float, calls: int, budget: int, weight: float = COST_WEIGHT) -> float:
    """The accuracy-and-cost score of one run: its test metric minus ``weight`` times the fraction of the
    task's budget it spent, ``test - weight * calls / budget``. A run that spends nothing (the manual prompt)
    pays nothing; one that spends the whole budget must beat it by more than ``weight`` to rank above it."""
    if not budget > 0 or calls < 0:
        raise ValueError(f"composite needs a positive budget and calls >= 0, not budget={budget}, calls={calls}.")
    return float(test_metric) - weight * float(calls) / float(budget)


def load_composite(root: str | Path = ROOT, weight: float = COST_WEIGHT, setting: str | None = None) -> dict:
    """{method: {task: mean composite score over the cached seeds}}, like ``load_leaderboard``; the budget of
    each task is the cells' own (the setting's scale, ``budget(task, scale)``)."""
    table: dict[str, dict] = {}
    for method in ROWS:
        for task in TASKS:
            runs = list(cached_runs(root, method, task, setting).values())
            if runs:
                table.setdefault(method, {})[task] = float(np.mean([
                    composite(r.test_metric, r.api_calls, budget(task, r.extra.get("scale", CPU_SCALE)), weight)
                    for r in runs]))
    return table
