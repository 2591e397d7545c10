"""The class server under load: 1, 4 and 16 concurrent clients sending BBT populations for a fixed time,
against a server that packs concurrent requests (dynamic batching) and one that runs them one at a time,
in one run on this machine.

Workloads, each on SST-2's 16-shot training set (32 examples, seed 42) and the embedded model in the dtype
load_model picks here: "bbt", BBT's cpu_quick population (10 candidates of 3 prompt tokens per request),
"zo", ZO-SGD's two-point step (2 candidates per request), and "probe", one prompt tried on the first 4
examples (what a student's widget or a quick check sends). Every client tunes the same split, as a class
does, so their requests can share a pass. Rows of workloads not run this time are kept from the output file. Each client is a thread with its own
connection and key. Reported per setting: requests/s, candidates/s, p50 and p99 latency (seconds per
request, as the client sees it), and the batching gain
(candidates/s with batching over candidates/s without, at the same number of clients).

    python benchmarks/serve_load.py [--seconds 60] [--clients 1 4 16] [--workloads bbt zo] [--out runs/serve/load.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

import bbtkit as bk
from bbtkit.serve.ledger import Ledger
from bbtkit.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


WORKLOADS = {"bbt": 10, "zo": 2, "probe": 1}  # candidates per request
EXAMPLES = {"bbt": 32, "zo": 32, "probe": 4}  # examples per request (the training set; a probe: its first 4)
TOKENS = 3  # prompt tokens (BBT's cpu_quick)


def load(url: str, keys: list[str], examples, pop: int, seconds: float) -> dict:
    """len(keys) clients sending populations for ``seconds``; latencies and counts."""
    start, stop = threading.Barrier(len(keys) + 1), time.monotonic() + 1e9
    lat: list[list[float]] = [[] for _ in keys]

    def client(i: int) -> None:
        api = bk.BlackBoxLM(bk.connect(url, keys[i]), "sst2", examples)
        g = torch.Generator().manual_seed(i)
        api(torch.zeros(1, TOKENS, api.model.hidden_size))  # the session, before the clock
        start.wait()
        while time.monotonic() < stop:
            X = 0.02 * torch.randn(pop, TOKENS, api.model.hidden_size, generator=g)
            t0 = time.perf_counter()
            api(X)
            lat[i].append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(keys))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    stop = t0 + seconds
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    every = np.concatenate([np.asarray(x) for x in lat])
    return {"clients": len(keys), "seconds": round(wall, 2), "requests": int(every.size),
            "requests_per_s": round(every.size / wall, 2), "candidates_per_s": round(every.size * pop / wall, 2),
            "p50_s": round(float(np.percentile(every, 50)), 4), "p99_s": round(float(np.percentile(every, 99)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS), default=list(WORKLOADS))
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--model", default="auto")
    ap.add_argument("--out", default=str(ROOT / "runs" / "serve" / "load.json"))
    args = ap.parse_args()
    split = bk.load_split("sst2", seed=42)
    machine = bk.runtime.describe()
    print(machine, flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp) / "load.db")
        keys = [ledger.create_key(f"client-{i}", 10 ** 9) for i in range(max(args.clients))]
        servers = {mode: ServerProcess(Path(tmp) / "load.db", args.model, *flags, log=Path(tmp) / f"{i}.log")
                   for i, (mode, flags) in enumerate((("batching", []), ("one at a time", ["--no-batching"])))}
        try:
            for s in servers.values():
                s.start()
            # the two servers side by side, each setting measured on one right after the other, in turn first
            # (ABBA), so that a slower minute of a shared machine, or a CPU that slows as it warms, falls on both
            settings = [(w, c) for w in args.workloads for c in args.clients]
            for k, (w, c) in enumerate(settings):
                for mode, s in (list(servers.items()) if k % 2 == 0 else list(servers.items())[::-1]):
                    row = {"server": mode, "workload": w, "pop": WORKLOADS[w],
                           **load(s.url, keys[:c], split.train[:EXAMPLES[w]], WORKLOADS[w], args.seconds)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        finally:
            for s in servers.values():
                s.stop()
    for w in args.workloads:
        for c in args.clients:
            on, off = (next(r for r in rows if (r["server"], r["workload"], r["clients"]) == (m, w, c))
                       for m in ("batching", "one at a time"))
            on["gain"] = round(on["candidates_per_s"] / off["candidates_per_s"], 2)
            print(f"{w:4s} {c:3d} clients: {on['candidates_per_s']:7.2f} vs {off['candidates_per_s']:7.2f} candidates/s, "
                  f"gain {on['gain']:.2f}x; p50 {on['p50_s']:.2f} vs {off['p50_s']:.2f} s, p99 {on['p99_s']:.2f} vs "
                  f"{off['p99_s']:.2f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(out.read_text())["rows"] if out.exists() else []
    rows = [r for r in kept if r["workload"] not in args.workloads and r.get("machine", machine) == machine] + \
        [{**r, "machine": machine} for r in rows]
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps({"machine": machine, "model": args.model, "workload": {
        "task": "sst2", "examples": EXAMPLES, "candidates_per_request": WORKLOADS,
        "prompt_tokens": TOKENS, "seconds": args.seconds}, "rows": rows}, indent=1) + "\n")
    tmp_out.replace(out)
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
