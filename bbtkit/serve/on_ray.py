"""The class server as Ray Serve replicas: ``python -m bbtkit serve --ray [ADDRESS] --replicas N``.

Each replica builds the same FastAPI app as one process does (``serve.from_args``), with its own model and
its own dynamic batcher, on one GPU (or a CPU share); Ray Serve's proxy spreads requests over the replicas
behind one address. What must be one for all replicas goes through **one ledger actor** (``LedgerOwner``),
which owns the SQLite ledger on the node that started the server:

* charging: every replica's ``charge``, ``refund`` and ``finish`` run in that one process, one at a time, in
  the ledger's immediate transactions, so a key is charged exactly its budget however the requests are spread;
* sessions: what defines a session is kept there too, so a replica that has not seen one registers it
  instead of answering 404 (``serve.sessions``).

Why an actor rather than PostgreSQL: the ledger stays the same SQLite file (``python -m bbtkit keys`` works on
it as before), nothing else has to be installed or secured, and a ledger call costs one actor round trip
(``benchmarks/cluster.py`` measures it). What it costs: the actor serialises every replica's charges, and
on a multi-node cluster the file lives on the node that started the server. Ray moves the ledger's
arguments between its own processes with pickle; the HTTP API that students reach still never does.
A per-key rate limit (``--rate-limit``) is kept by each replica, so on N replicas it allows up to N times as much.
"""
from __future__ import annotations

import functools
import secrets
import signal
import threading
from collections import OrderedDict
from pathlib import Path

from ..runtime import connect
from .ledger import BudgetExhausted, KeyError401, Ledger, sqlite_path

LEDGER_CALLS = frozenset({"authenticate", "charge", "finish", "refund", "usage", "take_submission",
                          "give_back_submission", "record_submission", "submissions", "keys", "calls",
                          "total_charged", "usage_csv"})
ERRORS = {"KeyError401": KeyError401, "BudgetExhausted": BudgetExhausted, "ValueError": ValueError}
SESSIONS_KEPT = 256  # session payloads the actor keeps (least recently used go first; a client then resends)


class LedgerOwner:
    """The one ledger every replica charges through (run as a Ray actor, one call at a time)."""

    def __init__(self, url: str):
        self.ledger = Ledger(url)
        self.payloads: OrderedDict[str, dict] = OrderedDict()

    def call(self, name: str, args: tuple, kwargs: dict):
        """("ok", value) or ("err", error class name, message): the ledger's errors cross as data."""
        if name not in LEDGER_CALLS:
            return "err", "ValueError", f"The ledger has no call {name!r}."
        try:
            return "ok", getattr(self.ledger, name)(*args, **kwargs)
        except tuple(ERRORS.values()) as err:
            return "err", type(err).__name__, str(err)

    def path(self) -> str:
        return self.ledger.path

    def put_session(self, sid: str, payload: dict) -> None:
        self.payloads[sid] = payload
        self.payloads.move_to_end(sid)
        while len(self.payloads) > SESSIONS_KEPT:
            self.payloads.popitem(last=False)

    def get_session(self, sid: str) -> dict | None:
        return self.payloads.get(sid)


class SharedLedger:
    """In a replica: the ledger's calls, made on the one ``LedgerOwner`` actor (what ``create_app`` is given)."""

    def __init__(self, owner, path: str):
        self._owner, self.path = owner, path

    def _call(self, name: str, *args, **kwargs):
        import ray

        out = ray.get(self._owner.call.remote(name, args, kwargs))
        if out[0] == "err":
            raise ERRORS[out[1]](out[2])
        return out[1]

    def __getattr__(self, name: str):
        if name in LEDGER_CALLS:
            return functools.partial(self._call, name)
        raise AttributeError(f"The shared ledger has no call {name!r}.")


class SharedSessions:
    """In a replica: the session payloads every replica registered, kept by the ledger actor."""

    def __init__(self, owner):
        self._owner = owner

    def put(self, sid: str, payload: dict) -> None:
        import ray

        ray.get(self._owner.put_session.remote(sid, payload))

    def get(self, sid: str) -> dict | None:
        import ray

        return ray.get(self._owner.get_session.remote(sid))


def _replica_app(args, owner, path: str):
    """One replica's app, its responses marked with a random replica tag (which replica answered)."""
    from .from_args import build_app

    app = build_app(args, SharedLedger(owner, path), SharedSessions(owner))
    tag = secrets.token_hex(4)

    @app.middleware("http")
    async def mark(request, call_next):
        response = await call_next(request)
        response.headers["x-bbtkit-replica"] = tag
        return response

    return app


def deployment(args, owner, path: str, gpus: float):
    """The Ray Serve application: ``args.replicas`` replicas of the class server."""
    from ray import serve

    @serve.deployment(num_replicas=args.replicas, max_ongoing_requests=256,
                      ray_actor_options={"num_cpus": args.replica_cpus, "num_gpus": gpus})
    @serve.ingress()
    class ClassServer:
        def __init__(self, args, owner, path):
            self._app = _replica_app(args, owner, path)

        def __serve_build_asgi_app__(self):
            return self._app

    return ClassServer.bind(args, owner, path)


def serve_on_ray(args) -> int:
    """Start the ledger actor and the replicas, serve until Ctrl-C or SIGTERM, then shut both down."""
    if args.replicas < 1 or args.replica_cpus < 0 or (args.replica_gpus or 0) < 0:
        raise SystemExit("--replicas must be at least 1, and --replica-cpus and --replica-gpus at least 0.")
    ray = connect(args.ray or None)
    from ray import serve
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    gpus = args.replica_gpus
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)  # the file is here
    db = sqlite_path(args.db)  # made absolute here: the actor's working folder is not this one
    db = db if db == ":memory:" else str(Path(db).expanduser().resolve())
    owner = ray.remote(LedgerOwner).options(num_cpus=0, max_restarts=-1, scheduling_strategy=here).remote(db)
    path = ray.get(owner.path.remote())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(deployment(args, owner, path, gpus), name="bbtkit", route_prefix="/")
        print(f"Serving {args.model} as {args.replicas} Ray Serve replicas ({args.replica_cpus:g} CPU, {gpus:g} GPU "
              f"each) at http://{args.host}:{args.port} (ledger {path}, owned by one actor).", flush=True)
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0
