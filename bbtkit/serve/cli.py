"""The teacher's commands: ``python -m bbtkit serve`` runs the class server, ``python -m bbtkit keys ...``
creates keys from a class list, sets budgets, revokes keys, and exports usage as CSV."""
from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_DB = "sqlite:///bbtkit-server.db"


def add_commands(sub) -> None:
    sv = sub.add_parser("serve", help="run the class server (needs the [serve] extra: pip install -e '.[serve]')")
    sv.add_argument("--model", default="auto", help="any load_model name (default: the embedded model)")
    sv.add_argument("--dtype", default="auto", help="auto, fp32 or bf16")
    sv.add_argument("--db", default=DEFAULT_DB, help="the ledger's sqlite:///PATH (keys, budgets, usage)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: the whole network)")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--allow-hidden", action="store_true", help="answer final hidden states (AJO needs them)")
    sv.add_argument("--max-wait-ms", type=float, default=2.0, help="how long a request waits for others to pack")
    sv.add_argument("--no-batching", action="store_true", help="run one request at a time")
    sv.add_argument("--sessions", type=int, default=64, help="students' example sets kept in memory at most")
    sv.add_argument("--max-body-mb", type=float, default=64, help="largest request body accepted, in MiB")
    sv.add_argument("--competition", nargs="*", default=[], metavar="TASK",
                    help="tasks whose test splits the server holds back and scores submissions on")
    sv.add_argument("--test-size", type=int, help="score on the first N test examples of each task")
    sv.add_argument("--answers", choices=("full", "top", "rounded"), default="full",
                    help="what a logits response shows: full logits, the top label only, or rounded probabilities")
    sv.add_argument("--decimals", type=int, default=1, help="decimals of --answers rounded")
    sv.add_argument("--rate-limit", type=float, default=0.0, help="requests per second per key (0: no limit)")
    sv.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    sv.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                    help="serve as Ray Serve replicas on the cluster at ADDRESS (none: this machine's, or a new local "
                         "one; 'local': a new local one); needs the [cluster] extra")
    sv.add_argument("--replicas", type=int, default=1, help="with --ray: copies of the server behind one address")
    sv.add_argument("--replica-cpus", type=float, default=1.0, help="with --ray: CPUs per replica")
    sv.add_argument("--replica-gpus", type=float, default=None,
                    help="with --ray: GPUs per replica (default: 1 where the cluster has GPUs, else 0)")
    ks = sub.add_parser("keys", help="the class server's keys: create, budget, revoke, list, usage")
    ks.add_argument("action", choices=("create", "budget", "submissions", "revoke", "list", "usage"))
    ks.add_argument("names", nargs="*", help="students' names (create, budget, revoke)")
    ks.add_argument("--class-list", help="a text file with one student's name per line (create)")
    ks.add_argument("--budget", type=int, help="API calls per key (create, budget)")
    ks.add_argument("--submissions", type=int, default=5, help="competition submissions per key (create, submissions)")
    ks.add_argument("--db", default=DEFAULT_DB)
    ks.add_argument("--out", help="write the CSV here instead of printing it (create, usage)")


def serve(args) -> int:
    try:
        import uvicorn
    except ImportError:
        print("The class server needs the [serve] extra: pip install -e '.[serve]' (or make serve).", file=sys.stderr)
        return 1
    if args.ray is not None:
        from .on_ray import serve_on_ray
        return serve_on_ray(args)
    from .from_args import build_app
    from .ledger import Ledger

    ledger = Ledger(args.db)
    app = build_app(args, ledger)
    model, competition = app.state.model, app.state.competition
    print(f"Serving {model.name} ({str(model.dtype).replace('torch.', '')}) at http://{args.host}:{args.port} "
          f"(ledger {ledger.path}; batching {'off' if args.no_batching else f'{args.max_wait_ms:g} ms'}"
          + (f"; competition on {', '.join(competition.tests)}" if competition else "") + ").", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def keys(args) -> int:
    from .ledger import Ledger

    ledger = Ledger(args.db)
    names = list(args.names)
    if args.class_list:
        names += [n.strip() for n in Path(args.class_list).read_text().splitlines() if n.strip()]
    try:
        if args.action == "create":
            if args.budget is None or not names:
                raise ValueError("keys create needs names (or --class-list FILE) and --budget N.")
            rows = ["name,key"] + [f"{n},{ledger.create_key(n, args.budget, args.submissions)}" for n in names]
            _write("\n".join(rows) + "\n", args.out, "keys (shown once; only their digests are stored)")
        elif args.action == "budget":
            if args.budget is None or not names:
                raise ValueError("keys budget needs names and --budget N.")
            for n in names:
                ledger.set_budget(n, args.budget)
        elif args.action == "submissions":
            for n in names:
                ledger.set_submissions(n, args.submissions)
        elif args.action == "revoke":
            for n in names:
                ledger.revoke(n)
        elif args.action == "list":
            for k in ledger.keys():
                print(f"{k['name']:20s} {k['used']:>8d}/{k['budget']:<8d}{'  revoked' if k['revoked'] else ''}")
        else:
            _write(ledger.usage_csv(), args.out, "usage")
    except ValueError as err:
        print(f"python -m bbtkit keys: {err}", file=sys.stderr)
        return 1
    return 0


def _write(text: str, out: str | None, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    path = Path(out)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    print(f"Wrote the {what} to {path}.")
