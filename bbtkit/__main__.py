"""Command line: ``python -m bbtkit setup`` prepares the embedded model and reports the data directory;
``python -m bbtkit download sst2 agnews`` fills ./data from the Hugging Face hub (needs internet);
``python -m bbtkit env`` says which torch, CPU features and dtype this machine runs with;
``python -m bbtkit lab notebooks/`` opens JupyterLab (what ``make course`` runs), also as root;
``python -m bbtkit serve`` runs the class server and ``python -m bbtkit keys ...`` manages its keys."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from .data import splits as data


def setup() -> int:
    from .model.embedded import embedded_dir
    from .model.load import load_model

    path = embedded_dir()
    lm = load_model()
    print(f"Embedded model ready ({lm.name}, cached at {path}); loads in {lm.load_seconds:.2f} s.")
    missing = []
    for task in data.TASKS:
        try:
            print(f"  data for {task:8s} -> {data.data_dir(task)}")
        except FileNotFoundError:
            missing.append(task)
    if missing:
        print(f"No data found for {', '.join(missing)}. With internet access run:\n"
              f"    python -m bbtkit download {' '.join(missing)}", file=sys.stderr)
    return 0


def lab_command(folder: str, root: bool | None = None) -> list[str]:
    """The JupyterLab command line for ``folder``. As root (the default user in Docker and on Colab),
    JupyterLab refuses to start unless told ``--allow-root``, so it is told."""
    if root is None:
        root = hasattr(os, "geteuid") and os.geteuid() == 0
    cmd = [sys.executable, "-m", "jupyterlab", folder]
    return cmd + ["--allow-root"] if root else cmd


def lab(folder: str) -> int:
    cmd = lab_command(folder)
    if "--allow-root" in cmd:
        print("Running as root (as in Docker or on Colab): starting JupyterLab with --allow-root.", flush=True)
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bbtkit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="convert the embedded model once and show where each task's data is")
    env = sub.add_parser("env", help="torch, CPU features and the dtype load_model() picks here")
    env.add_argument("--other-dtype", action="store_true",
                     help="print only the dtype that load_model() does *not* pick here (bf16 or fp32)")
    lb = sub.add_parser("lab", help="open JupyterLab on a folder (as root too: Docker, Colab)")
    lb.add_argument("folder", nargs="?", default="notebooks")
    dl = sub.add_parser("download", help="fill ./data from the Hugging Face hub (internet and `datasets` needed)")
    dl.add_argument("tasks", nargs="+", choices=data.TASKS)
    dl.add_argument("--dest", default="data")
    from .serve import cli as serve_cli

    serve_cli.add_commands(sub)
    args = parser.parse_args(argv)
    if args.command in ("serve", "keys"):
        return getattr(serve_cli, args.command)(args)
    if args.command == "setup":
        return setup()
    if args.command == "lab":
        return lab(args.folder)
    if args.command == "env":
        from .runtime import describe, pick_device, pick_dtype
        import torch
        print(("fp32" if pick_dtype(pick_device()) == torch.bfloat16 else "bf16") if args.other_dtype else describe())
        return 0
    from .data.download import download_task

    for task in args.tasks:
        t0 = time.perf_counter()
        try:
            out = download_task(task, dest=args.dest)
        except ImportError as e:  # no `datasets`: the sentence says what to install, a traceback adds nothing
            print(f"python -m bbtkit download: {e}", file=sys.stderr)
            return 1
        print(f"{task}: written to {out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
