"""pytest over the repository: after a run that executed notebooks (``make test`` runs them in smoke
mode under nbval), a summary of each notebook's minutes, kernel start included. The smoke costs the
notebooks state come from this summary of a run on a quiet 2-core CPU."""
from collections import defaultdict

_minutes: dict = defaultdict(float)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _minutes[path] += report.duration / 60


def pytest_terminal_summary(terminalreporter):
    if _minutes:
        terminalreporter.section("minutes per notebook (this run)")
        for path, minutes in sorted(_minutes.items()):
            terminalreporter.write_line(f"{minutes:5.1f} min  {path}")
