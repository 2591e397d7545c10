"""Joining a Ray cluster, for what outgrows one machine: the leaderboard's cells (``course.fan_out``) and the
class server's replicas (``serve.on_ray``). Ray is an optional extra: ``pip install -e ".[cluster]"``."""
from __future__ import annotations

import os

SETTINGS = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
            "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "60"}  # environment of what a local cluster starts


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
    ``"local"``: always a new local one, on 127.0.0.1 only), with ``cpus`` CPUs where it starts one. Usage
    statistics stay off (no traffic leaves the cluster), and Serve's proxy gets a minute, not 5 s, to answer
    its first health check (a busy laptop is slower)."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
    ray = require_ray()
    if not ray.is_initialized():
        if address == "local":
            _loopback_only()
        extra = dict(num_cpus=cpus) if address in (None, "local") else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False, **extra)
    return ray


def _loopback_only() -> None:
    """A new one-machine instance listens on 127.0.0.1, not on the machine's network address: Ray's own switch
    for one-machine instances, set here and in the environment that its processes inherit."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    try:
        from ray._private import ray_constants
        ray_constants.ENABLE_RAY_CLUSTER = False
    except (ImportError, AttributeError):  # another Ray version: the environment variable alone
        pass
