"""Past one machine on Ray, on a local 2-CPU Ray instance that this module starts (and stops), with tiny
models: the leaderboard's fan-out fills a grid exactly as the sequential run does, a worker killed while
it runs a cell is retried, and a second invocation computes nothing."""
import functools
import os
import signal
import sys

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.runtime import connect
from bbtkit.course import fan_out, leaderboard as lb

if os.environ.get("BBTKIT_CLUSTER_REQUIRED"):  # make test installs the [cluster] extra: no silent skip there
    import ray
else:
    ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
MODEL = "tiny-llama"
KW = dict(scale=0.01, test_size=16)
GRID = dict(methods=("manual", "bbt"), tasks=("sst2", "yelp"), seeds=(13, 42))
CELLS = [(m, t, s) for m in GRID["methods"] for t in GRID["tasks"] for s in GRID["seeds"]]
VICTIM = ("bbt", "sst2", 42)


@pytest.fixture(scope="module")
def local_ray():
    connect("local", cpus=2)
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # loopback only
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers get this module's hook by value
    yield ray
    ray.shutdown()


def _die_the_first_time(folder: str, victim: tuple, cell: tuple) -> None:
    """The hook run in the worker before a cell: kill -9 of the worker itself on the victim's first attempt;
    every attempt that goes on leaves a line in folder/<cell>."""
    if tuple(cell) == victim:
        try:
            os.close(os.open(os.path.join(folder, "killed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    with open(os.path.join(folder, "-".join(map(str, cell))), "a") as f:
        f.write(f"{os.getpid()}\n")


def test_the_fan_out_equals_the_sequential_run_survives_a_killed_worker_and_computes_nothing_twice(local_ray, tmp_path):
    import torch

    lm, threads = bk.load_model(MODEL), torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker computes (one CPU per cell)
    try:
        seq = {c: lb.run_entry(lm, *c, root=tmp_path / "seq", **KW) for c in CELLS}
    finally:
        torch.set_num_threads(threads)
    marks = tmp_path / "attempts"
    marks.mkdir()
    hook = functools.partial(_die_the_first_time, str(marks), VICTIM)
    done = fan_out.fill_on_ray(bk.load_model, MODEL, **GRID, **KW, root=tmp_path / "ray", hook=hook)
    assert set(done) == set(CELLS)
    assert (marks / "killed").exists()  # the victim's worker died mid-cell ...
    for c in CELLS:  # ... and every cell, the victim's too, ran to the end exactly once
        assert len((marks / "-".join(map(str, c))).read_text().split()) == 1, c
    key = lb.setting(lm, **KW)
    for c, here in seq.items():
        there = bk.load_result(lb.entry_path(tmp_path / "ray", key, *c))
        np.testing.assert_array_equal(there.z, here.z)
        assert (there.test_metric, there.dev_metric, there.api_calls, there.model) == \
            (here.test_metric, here.dev_metric, here.api_calls, here.model), c
        assert [h["dev_metric"] for h in there.history] == [h["dev_metric"] for h in here.history]
    assert bk.load_leaderboard(tmp_path / "ray") == bk.load_leaderboard(tmp_path / "seq")
    stamps = {c: os.stat(lb.entry_path(tmp_path / "ray", key, *c) / "result.json").st_mtime_ns for c in CELLS}
    assert fan_out.fill_on_ray(bk.load_model, MODEL, **GRID, **KW, root=tmp_path / "ray", hook=hook) == {}
    assert {c: os.stat(lb.entry_path(tmp_path / "ray", key, *c) / "result.json").st_mtime_ns for c in CELLS} == stamps


def test_a_cell_that_fails_is_reported_and_the_others_are_saved(local_ray, tmp_path):
    """Seed 7 has no few-shot split: its worker raises, which is not retried, and seed 13 is saved."""
    with pytest.raises(RuntimeError, match=r"1 of 2 cells failed \(the 1 others are saved\).*manual on sst2 seed 7"):
        fan_out.fill_on_ray(bk.load_model, MODEL, ("manual",), ("sst2",), (13, 7), root=tmp_path, **KW)
    assert fan_out.missing_cells(fan_out.setting_key(MODEL, "fp32", **KW), ("manual",), ("sst2",), (13, 7),
                                 tmp_path) == [("manual", "sst2", 7)]


def test_the_driver_names_the_model_and_the_dtype():
    with pytest.raises(ValueError, match="Name the model"):
        fan_out.setting_key("auto", "fp32", 0.1, 500)
    with pytest.raises(ValueError, match="Name the workers' dtype"):
        fan_out.setting_key("smollm2-135m", "auto", 0.1, 500)
    assert fan_out.setting_key("smollm2-135m", "fp32", 0.1, 500) == lb.CPU_SETTING
