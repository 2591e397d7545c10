"""One place for device, dtype, seeds, the user cache directory, and joining a Ray cluster (for what outgrows one
machine: the leaderboard's cells, ``course.fan_out``, and the class server's replicas, ``serve.on_ray``; Ray is the
optional ``[cluster]`` extra)."""
from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import torch


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """cuda, then mps, then cpu, unless told otherwise. A device this machine lacks is a ValueError
    that lists the ones it has."""
    if str(device) != "auto":
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"{device!r} is not a device name; use 'auto', {_available()}.") from None
        if (dev.type == "cuda" and not torch.cuda.is_available()) or (dev.type == "mps" and not _has_mps()):
            raise ValueError(f"device={str(device)!r}, but torch {torch.__version__} sees no {dev.type.upper()} "
                             f"device here. Use device='auto' (picks the best there is) or one of {_available()}.")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={str(device)!r}, but there are {torch.cuda.device_count()} GPU(s): "
                             f"use one of {_available()}.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _has_mps():
        return torch.device("mps")
    return torch.device("cpu")


def _has_mps() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _available() -> str:
    names = ["'cpu'"] + [f"'cuda:{i}'" for i in range(torch.cuda.device_count())] + (["'mps'"] if _has_mps() else [])
    return ", ".join(names)


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux only; empty elsewhere)."""
    if sys.platform != "linux":
        return set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (avx512_bf16 or AMX); emulated bf16 is slower than fp32."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
           "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


DTYPE_ENV = "BBTKIT_DTYPE"


def pick_dtype(device: torch.device, dtype: str | torch.dtype = "auto") -> torch.dtype:
    """bf16 where the hardware supports it (Ampere+ GPUs, CPUs with avx512_bf16), fp16 on older GPUs, else fp32.

    ``dtype="auto"`` first reads ``$BBTKIT_DTYPE`` (``fp32``, ``bf16``, ``fp16``): the test suite uses it
    to run the same tests in both dtypes on any CPU (bf16 is emulated, and slow, where the CPU lacks it).
    An explicit ``dtype`` argument always wins over the environment.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in set(_DTYPES.values()):
            raise ValueError(f"dtype {dtype} cannot run a model here; use 'auto' or one of {sorted(_DTYPES)} "
                             "(torch.float32, torch.bfloat16, torch.float16).")
        return dtype
    if not isinstance(dtype, str):
        raise ValueError(f"dtype must be 'auto', a name in {sorted(_DTYPES)} or a torch float dtype, not {dtype!r}.")
    if dtype == "auto" and os.environ.get(DTYPE_ENV, "auto").strip().lower() not in ("", "auto"):
        dtype = os.environ[DTYPE_ENV].strip().lower()
        if dtype not in _DTYPES:
            raise ValueError(f"${DTYPE_ENV}={dtype!r} is not a dtype; unset it or use one of {sorted(_DTYPES)}.")
    if dtype != "auto":
        if dtype not in _DTYPES:
            raise ValueError(f"Unknown dtype {dtype!r}; use 'auto' or one of {sorted(_DTYPES)}.")
        return _DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return torch.float32


def describe() -> str:
    """One line on where numbers come from: torch, threads, CPU, its bf16 features and the dtype
    that ``load_model()`` picks here. The test command prints it, so a failure report says where it ran."""
    model = ""
    if sys.platform == "linux":
        try:
            model = next((ln.partition(":")[2].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                          if ln.startswith("model name")), "")
        except OSError:
            pass
    device = pick_device()
    feats = sorted(cpu_flags() & {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}) or ["no avx512/amx"]
    auto = str(pick_dtype(device)).replace("torch.", "")
    env = os.environ.get(DTYPE_ENV)
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device.type}, "
            f"CPU {model or 'unknown'} ({', '.join(feats)}); load_model() dtype: {auto}"
            + (f" (forced by ${DTYPE_ENV}={env})" if env else ""))


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch in one call."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cache_dir() -> Path:
    """Where converted weights live: $BBTKIT_CACHE, else $XDG_CACHE_HOME/bbtkit, else ~/.cache/bbtkit."""
    if os.environ.get("BBTKIT_CACHE"):
        return Path(os.environ["BBTKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bbtkit"


def smoke() -> bool:
    """True when BBTKIT_SMOKE is set: notebooks and benchmarks shrink their budgets (used by CI)."""
    return os.environ.get("BBTKIT_SMOKE", "").lower() not in ("", "0", "false", "no")


RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
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
    for name, value in RAY_ENVIRONMENT.items():
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
