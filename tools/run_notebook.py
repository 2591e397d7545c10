"""Execute notebooks in place for committing: a real (full) run, outputs kept, widget state and
machine paths stripped, finished progress bars dropped, and each widget's saved output replaced by one
line that says to run the cell (without its state a widget cannot render, and its raw repr is noise).

    python tools/run_notebook.py notebooks/01_*.ipynb
    python tools/run_notebook.py --clean-only notebooks/*.ipynb   # the cleaning alone, no execution"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PATHS = re.compile(r"(/(?:root|home|Users|tmp|work)/[^\s'\"]*)")
WIDGET = "application/vnd.jupyter.widget-view+json"
PROGRESS = re.compile(r"\d+%\|")
INTERACT = "(an interactive control: run the cell to use it)"


def clean(nb) -> None:
    nb.metadata.pop("widgets", None)  # widget state blobs do not belong in the repository
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET in data:
                if PROGRESS.search(data.get("text/plain", "")):
                    continue  # a progress bar: stale once the run is over
                out["data"] = {"text/plain": INTERACT}
            kept.append(out)
        if cell.get("cell_type") == "code":
            cell["outputs"] = kept
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = PATHS.sub("<path>", out["text"])
            for key, value in out.get("data", {}).items():
                if key.startswith("text/") and isinstance(value, str):
                    out["data"][key] = PATHS.sub("<path>", value)


def main(paths: list[str]) -> None:
    if paths and paths[0] == "--clean-only":
        for p in paths[1:]:
            nb = nbformat.read(p, as_version=4)
            clean(nb)
            nbformat.write(nb, p)
        return
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        t0 = time.time()
        NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(Path(p).parent)}}).execute()
        clean(nb)
        nbformat.write(nb, p)
        print(f"{p}: executed in {(time.time() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main(sys.argv[1:])
