"""Execute notebooks in place for committing: a real (full) run, outputs kept, widget state and
machine paths stripped, finished progress bars dropped, and each widget's saved output replaced by what
it first showed (its figure and printed lines, taken from the widget state) and one line that says to
run the cell (without its state a widget cannot render, and its raw repr is noise).

    python tools/run_notebook.py notebooks/01_*.ipynb
    python tools/run_notebook.py --clean-only notebooks/*.ipynb   # the cleaning alone, no execution
    BBTKIT_SMOKE=1 python tools/run_notebook.py --time-only notebooks/*.ipynb   # minutes of each, files untouched
    python tools/run_notebook.py --time-only --profile runs/profile/after notebooks/*.ipynb   # and each cell's seconds

``--profile DIR`` writes DIR/<notebook>.md: every code cell's seconds (tools/notebook_profile.py reads the same
timings from a committed notebook without running it), headed by the machine it ran on."""
from __future__ import annotations

import os
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
SHOWN = "(above: what the control first showed; run the cell to interact)"


def widget_outputs(state: dict, model_id: str, seen=None) -> list:
    """The outputs a widget displayed (figures, printed lines), gathered from its Output widgets."""
    seen = set() if seen is None else seen
    if model_id in seen or model_id not in state:
        return []
    seen.add(model_id)
    s = state[model_id].get("state", {})
    found = [nbformat.from_dict(o) for o in s.get("outputs", []) if o.get("output_type") in ("display_data", "stream")]
    for child in s.get("children", []):
        found += widget_outputs(state, str(child).removeprefix("IPY_MODEL_"), seen)
    return found


def clean(nb) -> None:
    blob = nb.metadata.pop("widgets", None) or {}  # widget state blobs do not belong in the repository
    state = blob.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb.cells:
        kept, shown_ids = [], set()
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET in data:
                if PROGRESS.search(data.get("text/plain", "")):
                    continue  # a progress bar: stale once the run is over
                if data[WIDGET].get("model_id") in shown_ids:
                    continue  # the same control shown again (displayed, then returned as the cell's value)
                shown_ids.add(data[WIDGET].get("model_id"))
                shown = widget_outputs(state, data[WIDGET].get("model_id", ""))
                if shown:
                    kept += shown + [nbformat.v4.new_output("stream", name="stdout", text=SHOWN + "\n")]
                    continue
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
    profile = None
    if "--profile" in paths:
        k = paths.index("--profile")
        if k + 1 >= len(paths):
            sys.exit("--profile needs a folder to write the tables to, e.g. --profile runs/profile/after")
        profile = Path(paths[k + 1])
        paths = paths[:k] + paths[k + 2:]
    if paths and paths[0] == "--clean-only":
        for p in paths[1:]:
            nb = nbformat.read(p, as_version=4)
            clean(nb)
            nbformat.write(nb, p)
        return
    write = not (paths and paths[0] == "--time-only")
    for p in paths[0 if write else 1:]:
        nb = nbformat.read(p, as_version=4)
        t0 = time.time()
        NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(Path(p).parent)}}).execute()
        minutes = (time.time() - t0) / 60
        if profile is not None:
            from bbtkit.runtime import describe
            from notebook_profile import table
            profile.mkdir(parents=True, exist_ok=True)
            where = (f"{minutes:.1f} min wall, kernel start included; "
                     f"{'smoke' if os.environ.get('BBTKIT_SMOKE') else 'full'} run; {describe()}")
            (profile / f"{Path(p).stem}.md").write_text(table(nb, Path(p).name, where=where))
        if write:
            clean(nb)
            nbformat.write(nb, p)
        print(f"{p}: executed in {minutes:.1f} min" + ("" if write else " (not written)"), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
