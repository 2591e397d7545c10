"""Which optimizer? BBT's problem (the cpu_quick space) searched by each optimizer at equal API calls over
seeds: CMA-ES, random search, the Fireworks Algorithm and nevergrad's DE, PSO, (1+1)-ES, TBPSA and NGOpt
(chapter 3, ``benchmarks/optimizers.py``).

The tasks are chapter 3's two where the manual prompt leaves room: SST-2 with the "… Overall, the movie was"
template (about 53% zero-shot) and AG News with its own. On SST-2's best template the manual prompt is
already as good as 32 dev examples can tell, so dev selection keeps it whatever the optimizer found.

Each (optimizer, task, seed) run is a :class:`~bbtkit.tuning.results.Result` cached under
``runs/optimizers/<setting>/<optimizer>/<task>-<seed>/``.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from . import leaderboard as lb
from ..data.tasks import get_task
from ..methods.bbt import BBTConfig, run_bbt
from ..checksums import as_json
from ..methods.registry import METHODS
from ..tuning.result_builder import load_result
from .shared_runs import same_config

OPTIMIZERS = ("cma", "random", "fireworks", "DE", "PSO", "OnePlusOne", "TBPSA", "NGOpt")
LABELS = {"cma": "CMA-ES (pycma)", "random": "random search", "fireworks": "fireworks", "DE": "DE",
          "PSO": "PSO", "OnePlusOne": "(1+1)-ES", "TBPSA": "TBPSA", "NGOpt": "NGOpt"}
TASKS = ("sst2", "agnews")
BUDGET = 300
ROOT = lb.ROOT.parent / "optimizers"
ROWS = {"cma": "bbt", "random": "random"}  # the rows of other tables that are these optimizers in this space
TEMPLATES = {"sst2": ("{text_a} Overall, the movie was {mask}", ("bad", "great"))}  # chapter 3's
CPU_SETTING = "smollm2-135m_float32_test500_calls300"


def config(name: str, seed: int, budget: int = BUDGET) -> BBTConfig:
    """BBT's cpu_quick preset searched by ``name`` within ``budget`` calls."""
    return dataclasses.replace(BBTConfig.cpu_quick(seed), budget=budget, optimizer=name)


def setting(model, budget: int = BUDGET, test_size: int | None = lb.TEST_SIZE) -> str:
    """The cache folder's name: the model, its dtype, the test size and the budget."""
    return lb.setting(model, 1, test_size).rsplit("_scale", 1)[0] + f"_calls{int(budget)}"


def path(name: str, task: str, seed: int, setting_name: str = CPU_SETTING, root=None) -> Path:
    """Where the run is cached (under root, ``ROOT`` by default): its own folder, or the identical run that
    another benchmark made (looked for only under the default root)."""
    own = Path(root or ROOT) / setting_name / name / f"{get_task(task).name}-{seed}"
    if (own / "result.json").exists() or root is not None and Path(root) != ROOT:
        return own
    budget = int(setting_name.rsplit("_calls", 1)[1])
    return next((p for p in _elsewhere(name, task, seed, setting_name) if _same_run(p, name, seed, budget)), own)


def _elsewhere(name: str, task: str, seed: int, setting_name: str) -> list[Path]:
    """Where another table may hold this very run: the leaderboard (notebook 07) and the ZO comparison
    (notebook 08), whose rows ``bbt`` and ``random`` are CMA-ES and random search in this space."""
    row, task = ROWS.get(name), get_task(task).name
    if row is None or task in TEMPLATES:  # another template is another task, whatever the config says
        return []
    base = setting_name.rsplit("_calls", 1)[0]
    return [folder / row / f"{task}-{seed}" for folder in sorted(lb.ROOT.parent.glob(f"*/{base}_scale*"))]


def _same_run(where: Path, name: str, seed: int, budget: int) -> bool:
    """Whether the result saved at ``where`` was made with this table's config at ``budget`` calls (the registry
    row's preset: ``config(name, seed, budget)`` in that row's config class); the folder names the model, dtype
    and test size."""
    if not (where / "result.json").exists():
        return False
    want = dataclasses.replace(METHODS[ROWS[name]].config.cpu_quick(seed), budget=budget)
    return same_config(load_result(where).config, as_json(dataclasses.asdict(want)), want)


def task_for(model, task: str):
    """The task as the table runs it: chapter 3's template where ``TEMPLATES`` has one, else its own."""
    t = get_task(task)
    return t.with_template(TEMPLATES[t.name][0], model.family, TEMPLATES[t.name][1]) if t.name in TEMPLATES else t


def run_cell(model, name: str, task: str, seed: int, *, budget: int = BUDGET, test_size: int | None = lb.TEST_SIZE,
             root=None, recompute: bool = False, display: bool = False):
    """One cell: loaded when cached (unless ``recompute``), else run with ``config(name, seed, budget)`` and saved."""
    where = path(name, task, seed, setting(model, budget, test_size), root)
    if (where / "result.json").exists() and not recompute:
        return load_result(where)
    from ..data.splits import load_split

    split = load_split(get_task(task).name, seed=seed, test_size=test_size)
    t0 = time.perf_counter()
    res = run_bbt(model, task_for(model, task), split, config(name, seed, budget), display=display)
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


def load_table(root=None, setting_name: str = CPU_SETTING, optimizers=OPTIMIZERS, tasks=TASKS,
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
