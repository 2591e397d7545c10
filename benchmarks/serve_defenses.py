"""What a provider's defenses against model extraction cost, in one run (chapter 12 loads the result).

For each way of answering (full logits, the top label only, probabilities rounded to one decimal), a class
server with the embedded model is started, and through it:

* BBT (cpu_quick, ``--budget`` calls) tunes SST-2 for 3 seeds; the tuned prompt's test accuracy is then
  measured locally on the full model (the prompt's real quality, not what the defended answers show);
* an attacker copies the served zero-shot classifier from the answers to n unlabelled SST-2 training
  sentences (``bbtkit.course.extraction``) and its agreement with the server is measured on 400 test
  sentences it never asked, for n in 25 ... 1600.

Then rate limits: ZO-SGD's two-candidate requests with and without a limit of 0.5 requests per second per
key (wall time at equal calls), beside the attacker's one request for all its queries.

    python benchmarks/serve_defenses.py [--budget 200] [--seeds 13 42 100] [--out runs/serve/defenses.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import bbtkit as bk
from bbtkit.course import extraction
from bbtkit.data.splits import data_dir, load_examples
from bbtkit.serve.ledger import Ledger
from bbtkit.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
SIZES = (25, 50, 100, 200, 400, 800, 1600)
HELD_OUT = 400


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[13, 42, 100])
    ap.add_argument("--out", default=str(ROOT / "runs" / "serve" / "defenses.json"))
    args = ap.parse_args()
    machine = bk.runtime.describe()
    print(machine, flush=True)
    lm = bk.load_model()
    pool = [ex.text_a for ex in load_examples(data_dir("sst2") / "sst2" / "train.jsonl")]
    test = bk.load_split("sst2", test_size=HELD_OUT).test
    held_out = [ex.text_a for ex in test]
    server_labels = bk.label_logits(lm, "sst2", test).argmax(-1).numpy()  # the served classifier's own labels
    out = {"machine": machine, "budget": args.budget, "seeds": args.seeds, "held_out": HELD_OUT, "tuning": [],
           "extraction": [], "rate_limit": []}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "defenses.db"
        ledger = Ledger(db)
        for answers in ("full", "top", "rounded"):
            with ServerProcess(db, "auto", "--answers", answers, "--decimals", "1", log=Path(tmp) / "server.log") as s:
                r = bk.connect(s.url, ledger.create_key(f"{answers}-student", 10 ** 9))
                for seed in args.seeds:
                    split = bk.load_split("sst2", seed=seed, test_size=HELD_OUT)
                    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=seed), budget=args.budget)
                    t0 = time.perf_counter()
                    res = bk.run_bbt(r, "sst2", split, cfg, display=False, evaluate_test=False)
                    row = {"answers": answers, "seed": seed, "calls": res.api_calls, "dev": res.dev_metric,
                           "test": bk.evaluate(lm, "sst2", split.test, res.prompt, position=res.position),
                           "minutes": round((time.perf_counter() - t0) / 60, 2)}
                    out["tuning"].append(row)
                    print(json.dumps(row), flush=True)
                attacker = bk.connect(s.url, ledger.create_key(f"{answers}-attacker", 10 ** 9))
                for row in extraction.extraction_curve(attacker, "sst2", pool, held_out, SIZES, server_labels):
                    row = {"answers": answers, **row, "calls": attacker.usage()["calls"]}
                    out["extraction"].append(row)
                    print(json.dumps(row), flush=True)
        for rate in (0.0, 0.5):
            with ServerProcess(db, "auto", "--rate-limit", str(rate), log=Path(tmp) / "server.log") as s:
                r = bk.connect(s.url, ledger.create_key(f"rate-{rate}", 10 ** 9))
                cfg = dataclasses.replace(bk.ZOConfig.cpu_quick(seed=42), budget=40)
                t0 = time.perf_counter()
                bk.run_zo(r, "sst2", bk.load_split("sst2", seed=42, test_size=HELD_OUT), cfg, display=False,
                          evaluate_test=False)
                zo_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                extraction.ask(bk.connect(s.url, ledger.create_key(f"rate-{rate}-attacker", 10 ** 9)), "sst2", pool[:800])
                row = {"rate_limit": rate, "zo_seconds_40_calls": round(zo_s, 1),
                       "attacker_seconds_800_queries": round(time.perf_counter() - t0, 1)}
                out["rate_limit"].append(row)
                print(json.dumps(row), flush=True)
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(json.dumps(out, indent=1) + "\n")
    tmp_path.replace(path)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
