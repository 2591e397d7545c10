"""Joining a Ray cluster, for what outgrows one machine: the leaderboard's cells (``course.fan_out``) and the
class server's replicas (``serve.on_ray``). Ray is an optional extra: ``pip install -e ".[cluster]"``."""
from __future__ import annotations

import os


def require_ray():
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError("The leaderboard and the class server on Ray need the [cluster] extra: "
                          "pip install -e '.[cluster]' in the course folder (make test installs it).") from None
    return ray


def connect(address: str | None = None, cpus: int | None = None):
    """Join the Ray cluster at ``address`` (``None``: the one this machine runs, else a new local one;
    ``"local"``: always a new local one), with ``cpus`` CPUs where it starts one. Usage statistics stay off,
    so no traffic leaves the cluster."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        local = address in (None, "local")
        ray.init(address=address, num_cpus=cpus if local else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    return ray
