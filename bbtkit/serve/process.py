"""A class server in a child process on a free loopback port: what the tests, the load benchmark and
chapter 12 start, wait for (boundedly) and stop. A teacher runs ``python -m bbtkit serve`` instead."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m bbtkit serve`` on 127.0.0.1, as a context manager; ``kill()`` is kill -9, ``start()`` again
    restarts it on the same port and ledger."""

    def __init__(self, db: str | Path, model: str = "auto", *args: str, port: int | None = None, timeout: float = 120.0,
                 log: str | Path | None = None, stop_timeout: float = 15.0):
        self.db, self.model, self.args, self.timeout = str(db), model, list(args), float(timeout)
        self.stop_timeout = float(stop_timeout)  # how long a SIGTERM may take before kill -9 (Ray shuts down slowly)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        import importlib.util

        missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(f"The class server needs {' and '.join(missing)}: pip install -e '.[serve]' in the course "
                              "folder (make course and make test install it), then run the cell again.")
        cmd = [sys.executable, "-m", "bbtkit", "serve", "--model", self.model, "--db", self.db,
               "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child holds its own copy
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:  # bounded: the server answers /v1/info, or we give up
            if self.proc.poll() is not None:
                raise RuntimeError(f"The server exited with code {self.proc.returncode} before answering"
                                   + (f"; see {self.log}." if self.log else "."))
            try:
                with urllib.request.urlopen(self.url + "/v1/info", timeout=2) as r:
                    self.info = json.loads(r.read())
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"The server did not answer within {self.timeout:.0f} s.")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush; what the ledger committed is all that survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
