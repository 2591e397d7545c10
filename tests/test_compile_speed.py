"""The README's torch.compile table is the one benchmarks/compile_speed.py wrote to runs/compile_speed.json."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEMENT = {"after the input": "after", "before the input": "before"}


def test_the_readme_table_is_the_measured_one():
    rows = json.loads((ROOT / "runs" / "compile_speed.json").read_text())["rows"]
    got = {(r["dtype"], r["position"], r["variant"]): r for r in rows}
    lines = re.findall(r"^\| (fp32|bf16) \| (after the input|before the input) \| (.+) \|$",
                       (ROOT / "README.md").read_text(), re.M)
    assert len(lines) == 4
    for dtype, place, rest in lines:
        eager, mlp, layers, comp, diff = [c.strip() for c in rest.split("|")]
        r = {v: got[dtype, PLACEMENT[place], v] for v in ("eager", "mlp+norms", "layers")}
        assert eager == f"{r['eager']['s_per_call']:.2f}"
        assert mlp == f"{r['mlp+norms']['speedup']:.2f}×" and layers == f"{r['layers']['speedup']:.2f}×"
        assert comp == f"{r['mlp+norms']['first_call_s']:.0f} / {r['layers']['first_call_s']:.0f}"
        worst = max(r[v]["max_abs_diff"] for v in ("mlp+norms", "layers"))
        assert diff == (f"{worst:.1e}".replace("e-0", "e-") if worst < 0.01 else f"{worst:.2f}")
        assert all(r[v]["error"] is None for v in r)
