"""benchmarks/seam_regression.py: two runs of one version agree row by row, and a changed z is reported."""
import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "seam_regression.py"
spec = importlib.util.spec_from_file_location("seam_regression", SCRIPT)
seam = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seam)

ARGS = ["--model", "tiny-llama", "--budget", "20", "--test-size", "10", "--methods",
        "manual", "bbt", "zo_sgd", "ipl_gradient", "evoprompt", "mezo", "eot"]


def test_the_same_version_gives_identical_rows_and_a_changed_z_differs(tmp_path):
    seam.main(["--save", str(tmp_path / "a"), *ARGS])
    table = seam.main(["--save", str(tmp_path / "b"), "--compare", str(tmp_path / "a"), *ARGS])
    assert [r["method"] for r in table] == ARGS[ARGS.index("--methods") + 1:]
    assert all(r["same"] for r in table), [r for r in table if not r["same"]]
    assert table[-1]["after"]["text"] is not None and table[1]["max_dz"] == 0.0  # EoT's predictions; BBT's z
    z = np.load(tmp_path / "a" / "bbt-z.npy")
    np.save(tmp_path / "a" / "bbt-z.npy", z + 1e-7)
    head = ARGS[:ARGS.index("--methods") + 1]
    again = seam.main(["--save", str(tmp_path / "c"), "--compare", str(tmp_path / "a"), *head, "bbt"])
    assert [r["method"] for r in again] == ["bbt"]
    assert not again[0]["same"] and 0 < again[0]["max_dz"] < 1e-6
