"""Past one machine, measured on this one, in one run: leaderboard cells per hour run one after another and
fanned out over a local Ray instance with 2 CPU workers; what one ledger call costs directly and through the
ledger actor; and requests/s of the class server as one process and as 1 and 2 Ray Serve replicas.

Cells: BBT and the manual prompt on SST-2 and SNLI, seeds 13 and 42 (8 cells), budgets at scale 0.01 (30 and
80 calls), 100 test examples, the embedded model in fp32. Sequential: one process with 2 torch threads, the
model loaded once. Ray: one CPU and one torch thread per cell, two at a time, each worker loading the model
once; its wall time includes starting Ray. Server: BBT's population (10 candidates, 32 examples) from
``--clients`` client threads for ``--seconds``, each server measured once it answers from every replica.

    python benchmarks/cluster.py [--seconds 30] [--clients 8] [--out runs/cluster/bench.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import bbtkit as bk
from bbtkit.runtime import connect
from bbtkit.course import fan_out, leaderboard as lb
from bbtkit.model.embedded import EMBEDDED
from bbtkit.serve.ledger import Ledger
from bbtkit.serve.on_ray import LedgerOwner, SharedLedger
from bbtkit.serve.process import ServerProcess
from serve_load import EXAMPLES, WORKLOADS, load

ROOT = Path(__file__).resolve().parents[1]
GRID = dict(methods=("manual", "bbt"), tasks=("sst2", "snli"), seeds=(13, 42))
KW = dict(scale=0.01, test_size=100)


def cells(tmp: Path) -> dict:
    """Cells per hour, sequential and on Ray (2 workers), and the two grids' test metrics compared."""
    import torch

    t0 = time.perf_counter()
    lm = bk.load_model(dtype="fp32")
    grid = [(m, t, s) for t in GRID["tasks"] for m in GRID["methods"] for s in GRID["seeds"]]
    seq = {c: lb.run_entry(lm, *c, root=tmp / "seq", **KW).test_metric for c in grid}
    seq_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray = connect("local", cpus=2)
    start_s = time.perf_counter() - t0
    fan_out.fill_on_ray(bk.load_model, EMBEDDED, **GRID, **KW, root=tmp / "ray", cpus=1)
    ray_s = time.perf_counter() - t0
    key = fan_out.setting_key(EMBEDDED, "fp32", **KW)
    there = {c: bk.load_result(lb.entry_path(tmp / "ray", key, *c)).test_metric for c in grid}
    ledger = ledger_cost(ray, tmp)
    ray.shutdown()
    return {"cells": len(grid), "torch_threads_sequential": torch.get_num_threads(),
            "sequential_s": round(seq_s, 1), "ray_s": round(ray_s, 1), "ray_start_s": round(start_s, 1),
            "sequential_cells_per_hour": round(3600 * len(grid) / seq_s, 1),
            "ray_cells_per_hour": round(3600 * len(grid) / ray_s, 1),
            "same_test_metrics": seq == there, "ledger": ledger}


def ledger_cost(ray, tmp: Path, n: int = 300) -> dict:
    """Milliseconds per charge: on the SQLite ledger in this process, and through the ledger actor."""
    out = {}
    direct = Ledger(tmp / "direct.db")
    owner = ray.remote(LedgerOwner).options(num_cpus=0).remote(str(tmp / "actor.db"))
    shared = SharedLedger(owner, ray.get(owner.path.remote()))
    for name, ledger, keys in (("direct", direct, direct), ("actor", shared, Ledger(tmp / "actor.db"))):
        key = ledger.authenticate(keys.create_key("bench", 10 ** 6))
        t0 = time.perf_counter()
        for _ in range(n):
            ledger.charge(key, 10, "logits")
        out[f"{name}_ms_per_charge"] = round(1000 * (time.perf_counter() - t0) / n, 3)
    return out


def wait_for_replicas(url: str, n: int, timeout: float = 300) -> None:
    """Bounded: until n distinct replicas have answered GET /v1/info (the proxy learns of them one by one)."""
    seen, deadline = set(), time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline:
        for _ in range(8):
            with urllib.request.urlopen(url + "/v1/info", timeout=30) as r:
                seen.add(r.headers.get("x-bbtkit-replica", "one process"))
        time.sleep(0.5)
    if len(seen) < n:
        raise TimeoutError(f"only {len(seen)} of {n} replicas answered within {timeout:.0f} s")


def servers(tmp: Path, seconds: float, clients: int) -> list[dict]:
    split = bk.load_split("sst2", seed=42)
    rows = []
    setups = (("one process", [], 1), ("Ray, 1 replica", ["--ray", "local", "--replicas", "1", "--replica-cpus", "2"], 1),
              ("Ray, 2 replicas", ["--ray", "local", "--replicas", "2", "--replica-cpus", "1"], 2))
    for i, (label, flags, n) in enumerate(setups):
        db = tmp / f"server-{i}.db"
        keys = [Ledger(db).create_key(f"client-{k}", 10 ** 9) for k in range(clients)]
        t0 = time.perf_counter()
        with ServerProcess(db, "auto", *flags, timeout=600, stop_timeout=120, log=tmp / f"server-{i}.log") as s:
            wait_for_replicas(s.url, n)
            ready = time.perf_counter() - t0
            row = {"server": label, "start_s": round(ready, 1),
                   **load(s.url, keys, split.train[:EXAMPLES["bbt"]], WORKLOADS["bbt"], seconds)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "runs" / "cluster" / "bench.json"))
    args = ap.parse_args()
    machine = bk.runtime.describe()
    print(machine, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"machine": machine, "cells": cells(Path(tmp))}
        print(json.dumps(result["cells"]), flush=True)
        result["servers"] = servers(Path(tmp), args.seconds, args.clients)
    result["workload"] = {"grid": GRID, **KW, "server": f"BBT populations ({WORKLOADS['bbt']} candidates, "
                          f"{EXAMPLES['bbt']} examples) from {args.clients} clients for {args.seconds:g} s"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".tmp").write_text(json.dumps(result, indent=1) + "\n")
    out.with_suffix(".tmp").replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
