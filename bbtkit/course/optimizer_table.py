"""Which optimizer? BBT's problem (SST-2 and AG News, the cpu_quick space) searched by each optimizer at equal
API calls over seeds: CMA-ES, random search, the Fireworks Algorithm and nevergrad's DE, PSO, (1+1)-ES,
TBPSA and NGOpt (chapter 3, ``benchmarks/optimizers.py``).

Each (optimizer, task, seed) run is a :class:`~bbtkit.tuning.results.Result` cached under
``runs/optimizers/<setting>/<optimizer>/<task>-<seed>/``. Where the leaderboard (``leaderboard.py``) holds the
very same run (an optimizer with a registry row, a leaderboard task whose budget is this one), the
leaderboard's cell is used, computed once for both tables.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from . import leaderboard as lb
from ..data.tasks import get_task
from ..methods.bbt import BBTConfig, run_bbt
from ..tuning.result_builder import load_result

OPTIMIZERS = ("cma", "random", "fireworks", "DE", "PSO", "OnePlusOne", "TBPSA", "NGOpt")
LABELS = {"cma": "CMA-ES (pycma)", "random": "random search", "fireworks": "fireworks", "DE": "DE",
          "PSO": "PSO", "OnePlusOne": "(1+1)-ES", "TBPSA": "TBPSA", "NGOpt": "NGOpt"}
TASKS = ("sst2", "agnews")
BUDGET = 300
ROOT = lb.ROOT.parent / "optimizers"
ROWS = {"cma": "bbt", "random": "random", "DE": "bbt_de", "PSO": "bbt_pso", "NGOpt": "bbt_ngopt"}  # leaderboard rows
CPU_SETTING = "smollm2-135m_float32_test500_calls300"


def config(name: str, seed: int, budget: int = BUDGET) -> BBTConfig:
    """BBT's cpu_quick preset searched by ``name`` within ``budget`` calls."""
    return dataclasses.replace(BBTConfig.cpu_quick(seed), budget=budget, optimizer=name)


def setting(model, budget: int = BUDGET, test_size: int | None = lb.TEST_SIZE) -> str:
    """The cache folder's name: the model, its dtype, the test size and the budget."""
    return lb.setting(model, 1, test_size).rsplit("_scale", 1)[0] + f"_calls{int(budget)}"


def _leaderboard_cell(name: str, task: str, setting_name: str) -> str | None:
    """The leaderboard setting whose cell is this run, or None."""
    base, calls = setting_name.rsplit("_calls", 1)
    if name in ROWS and task in lb.TASKS and lb.budget(task) == int(calls):
        return f"{base}_scale{lb.CPU_SCALE:g}"
    return None


def path(name: str, task: str, seed: int, setting_name: str = CPU_SETTING, root=ROOT) -> Path:
    """Where the run is cached: the leaderboard's cell when it is the same run, else under root."""
    task = get_task(task).name
    board = _leaderboard_cell(name, task, setting_name) if Path(root) == ROOT else None
    if board is not None:
        return lb.ROOT / board / ROWS[name] / f"{task}-{seed}"
    return Path(root) / setting_name / name / f"{task}-{seed}"


def run_cell(model, name: str, task: str, seed: int, *, budget: int = BUDGET, test_size: int | None = lb.TEST_SIZE,
             root=ROOT, recompute: bool = False, display: bool = False):
    """One cell: loaded when cached (unless ``recompute``), else run with ``config(name, seed, budget)`` and saved."""
    where = path(name, task, seed, setting(model, budget, test_size), root)
    if (where / "result.json").exists() and not recompute:
        return load_result(where)
    if where.is_relative_to(lb.ROOT):  # the leaderboard's own cell: its code runs it, so both tables agree
        return lb.run_entry(model, ROWS[name], task, seed, test_size=test_size, recompute=recompute)
    from ..data.splits import load_split

    split = load_split(get_task(task).name, seed=seed, test_size=test_size)
    t0 = time.perf_counter()
    res = run_bbt(model, task, split, config(name, seed, budget), display=display)
    res.seconds = time.perf_counter() - t0
    res.extra.update(test_size=len(split.test), device=model.device.type,
                     dtype=str(model.dtype).removeprefix("torch."), optimizer=name)
    res.save(where, overwrite=True)
    return res


def curve(res, key: str = "best_loss") -> tuple[np.ndarray, np.ndarray]:
    """(calls, running minimum of the training loss) of one run; key="dev_metric": running best dev."""
    rows = [h for h in res.history if h.get(key) is not None]
    calls, values = np.array([h["calls"] for h in rows]), np.array([h[key] for h in rows], dtype=float)
    best = np.minimum.accumulate(values) if key != "dev_metric" else np.maximum.accumulate(values)
    return calls, best


def load_table(root=ROOT, setting_name: str = CPU_SETTING, optimizers=OPTIMIZERS, tasks=TASKS,
               seeds=lb.SEEDS) -> dict:
    """{optimizer: {task: {"mean", "std", "seeds", "dev", "calls", "minutes", "runs"}}} over the cached seeds."""
    table: dict = {}
    for name in optimizers:
        for task in tasks:
            runs = [load_result(p) for s in seeds
                    if ((p := path(name, task, s, setting_name, root)) / "result.json").exists()]
            if not runs:
                continue
            test = np.array([r.test_metric for r in runs], dtype=float)
            table.setdefault(name, {})[task] = {
                "mean": float(test.mean()), "std": float(test.std()), "seeds": len(runs),
                "dev": float(np.mean([r.dev_metric for r in runs])),
                "calls": float(np.mean([r.api_calls for r in runs])),
                "minutes": float(np.mean([r.seconds for r in runs]) / 60), "runs": runs}
    return table
