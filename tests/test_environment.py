"""environment.yml lists what pyproject.toml needs, for conda users."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_every_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for extra in ("notebooks", "test") for r in project["optional-dependencies"][extra]}
    listed = {_name(line.lstrip(" -")) for line in (ROOT / "environment.yml").read_text().splitlines()
              if line.strip().startswith("- ") and not line.strip().startswith("- python")}
    missing = wanted - listed
    assert not missing, f"environment.yml lacks {sorted(missing)}"
