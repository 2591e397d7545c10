"""The leaderboard's missing cells, run one after another or fanned out over a Ray cluster.

``fill_on_ray`` submits each missing cell (method, task, seed, in one setting) as one Ray task that
asks for a GPU (or a share of one), or for ``cpus`` CPUs on a cluster without GPUs. A worker loads the
model once per process, computes the cell (``leaderboard.compute_entry``) and sends its ``Result`` back;
**the driver saves it** through the same atomic cache as ``run_entry`` (``leaderboard.save_entry``):

* a cluster's workers need not share a file system with the driver (the driver's ``runs/`` is the one
  that the notebooks read), and a result is small (a z vector, a history, a config);
* one writer: no two processes ever race on a cell's folder;
* what the driver saved is exactly what the next invocation skips, so a finished cell is never recomputed,
  even after the driver itself is stopped.

A worker that dies mid-cell (killed, out of memory, a lost node) is retried by Ray (``retries``) from
the cell's start; an exception raised by the method is not retried (it is a bug or bad input): the other
cells go on, and the failures are reported together at the end.

Ray is an optional extra (``pip install -e ".[cluster]"``); nothing here imports it unless it is used.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..runtime import connect
from ..tuning.progress import Progress
from . import leaderboard as lb

COST = {"evoprompt": 8.0, "dfo_lora": 2.0, "dfo_lora_fw": 2.0, "zo_gv": 2.0}  # rough cost per call, BBT = 1
DTYPES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
          "fp16": "float16", "float16": "float16"}
_MODELS: dict = {}  # in a worker process: (name, device, dtype) -> the loaded model, loaded once


def missing_cells(key: str, methods, tasks, seeds, root: str | Path = lb.ROOT, scale: float = lb.CPU_SCALE,
                  recompute: bool = False) -> list[tuple[str, str, int]]:
    """The (method, task, seed) cells of setting ``key`` not cached under root, the most expensive first
    (so that a pool or a cluster starts its long runs early)."""
    cells = [(m, t, s) for t in tasks for m in methods for s in seeds
             if recompute or not (lb.entry_path(root, key, m, t, s) / "result.json").exists()]
    return sorted(cells, key=lambda c: -COST.get(c[0], 1.0) * lb.budget(c[1], scale))


def setting_key(model: str, dtype: str, scale: float, test_size: int | None) -> str:
    """The setting the workers will compute, known without loading the model (its name and dtype named)."""
    if model == "auto":
        raise ValueError("Name the model (e.g. 'smollm2-135m', the embedded default): the driver loads none, "
                         "so 'auto' would leave the cache folder unknown.")
    if dtype not in DTYPES:
        raise ValueError(f"Name the workers' dtype ({', '.join(DTYPES)}), not {dtype!r}: with 'auto' each "
                         "worker would pick its own, and cells of one table could differ in dtype.")
    return lb.setting_for(str(model), "float32" if str(model).startswith("tiny-") else DTYPES[dtype], scale, test_size)


def _model(load, name: str, device: str, dtype: str):
    if (name, device, dtype) not in _MODELS:
        _MODELS.clear()  # one model per worker process at a time
        _MODELS[name, device, dtype] = load(name, device=device, dtype=dtype)
    return _MODELS[name, device, dtype]


def compute_cell(load, spec: dict, cell: tuple[str, str, int], hook=None):
    """One cell in a worker: ``hook(cell)`` first (tests kill the worker there), then the run on the model
    that ``load(name, device=, dtype=)`` gives (``bk.load_model``; loaded once per worker process)."""
    if hook is not None:
        hook(cell)
    import torch

    torch.set_num_threads(max(1, int(spec["threads"])))
    lm = _model(load, spec["model"], spec["device"], spec["dtype"])
    method, task, seed = cell
    return lb.compute_entry(lm, method, task, seed, scale=spec["scale"], test_size=spec["test_size"])


def fill_on_ray(load, model: str, methods=tuple(lb.ROWS), tasks=lb.TASKS, seeds=lb.SEEDS, *,
                scale: float = lb.CPU_SCALE, test_size: int | None = lb.TEST_SIZE, root: str | Path = lb.ROOT,
                dtype: str = "fp32", address: str | None = None, cpus: int = 1, gpus: float | None = None,
                retries: int = 3, recompute: bool = False, hook=None, stream=None) -> dict:
    """Compute the missing cells of ``model`` (a name ``load`` takes: ``fill_on_ray(bk.load_model,
    "smollm2-135m")``) as Ray tasks and save each as it arrives; {cell: Result} of those computed.
    ``gpus``: GPUs per cell (default 1 where the cluster has GPUs; 0.25 packs four small-model cells on one),
    else ``cpus`` CPUs per cell."""
    key = setting_key(model, dtype, scale, test_size)
    cells = missing_cells(key, methods, tasks, seeds, root, scale, recompute)
    if not cells:
        print(f"Every cell of {key} is cached under {root}: nothing to compute.", flush=True)
        return {}
    ray = connect(address, None if address not in (None, "local") else max(cpus, os.cpu_count() or 1))
    gpus = (1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0) if gpus is None else float(gpus)
    spec = dict(model=model, dtype=dtype, device="cuda" if gpus > 0 else "cpu", threads=cpus, scale=scale,
                test_size=test_size)
    task = ray.remote(compute_cell).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries)
    pending = {task.remote(load, spec, cell, hook): cell for cell in cells}
    bar = Progress(len(cells), f"{len(cells)} cells on Ray", unit="cell", stream=stream)
    done, failed = {}, {}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                res = ray.get(ready[0])
            except Exception as err:  # the method's own error, or retries spent: the other cells go on
                failed[cell] = err
            else:
                if res.extra.get("setting") != key:
                    raise RuntimeError(f"A worker computed {res.extra.get('setting')}, not {key}: check that every "
                                       "node runs the same course version and model.")
                lb.save_entry(res, cell[2], test_size, root)
                done[cell] = res
            bar.update(1)
            bar.set_postfix(last=" ".join(map(str, cell)), failed=len(failed))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        bar.close(False)
        raise
    bar.close(not failed)
    if failed:
        (m, t, s), err = next(iter(failed.items()))
        raise RuntimeError(f"{len(failed)} of {len(cells)} cells failed (the {len(done)} others are saved); "
                           f"the first, {m} on {t} seed {s}: {err}")
    return done
