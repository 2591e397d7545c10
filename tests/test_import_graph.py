"""No import cycles in bbtkit: a lower layer never imports a higher one, lazy imports (inside functions) included."""
import ast
import shutil
from pathlib import Path

import bbtkit as bk

PACKAGE = Path(bk.__file__).parent


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, from the source (every import statement, at any depth)."""
    mods = {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in root.rglob("*.py")}
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(pkg.split(".")[:len(pkg.split(".")) - node.level + 1]) if node.level else ""
                target = ".".join(x for x in (base, node.module or "") if x)
                for a in node.names:  # "from . import inject" names a module; "from .api import X" a name in one
                    t = f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target
                    if t in mods and t != m and mods[t].name != "__init__.py":
                        graph[m].add(t)
            elif isinstance(node, ast.Import):
                graph[m] |= {a.name for a in node.names if a.name in mods and a.name != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert "bbtkit.api" in graph and "bbtkit.forward" in graph["bbtkit.api"]  # the parser sees imports
    assert cycles(graph) == []


def test_a_planted_cycle_is_found_lazy_or_not(tmp_path):
    root = tmp_path / "bbtkit"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / "inject.py", "a") as f:  # the lowest layer reaching up to a method, inside a function
        f.write("\n\ndef _planted():\n    from .bbt import run_bbt\n    return run_bbt\n")
    found = cycles(import_graph(root))
    assert any({"bbtkit.inject", "bbtkit.bbt"} <= set(c) for c in found), found


def test_one_module_defines_METHODS_the_registry():
    """One name, one meaning: the calibrations, ZO optimizers, reasoning strategies and leaderboard rows
    are named for what they hold."""
    owners = sorted(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
                    if any(getattr(t, "id", None) == "METHODS" for n in ast.parse(p.read_text()).body
                           for t in (n.targets if isinstance(n, ast.Assign) else
                                     [n.target] if isinstance(n, ast.AnnAssign) else [])))
    assert owners == ["bbtkit.methods"]
    assert isinstance(bk.METHODS, dict) and all(callable(m.run) for m in bk.METHODS.values())


PIECES = ("optimizers", "zo", "fireworks", "cmaes", "spaces", "objectives", "projection", "loop")
METHOD_MODULES = {m.run.__module__ for m in bk.METHODS.values()} | {"bbtkit.mezo", "bbtkit.ipl_gradient", "bbtkit.eot"}


def upward(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """{piece: the method modules it imports}: an optimizer, a space or an objective is a piece a method puts
    together, and never imports a method."""
    return {p: sorted(graph[f"bbtkit.{p}"] & METHOD_MODULES) for p in PIECES if graph[f"bbtkit.{p}"] & METHOD_MODULES}


def test_no_upward_import_from_optimizers_spaces_or_objectives_to_a_method(tmp_path):
    assert {"bbtkit.bbt", "bbtkit.zo_sgd", "bbtkit.ajo"} <= METHOD_MODULES
    assert upward(import_graph(PACKAGE)) == {}
    root = tmp_path / "bbtkit"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / "spaces.py", "a") as f:  # a space reaching up to a method, inside a function
        f.write("\n\ndef _planted():\n    from .bbt import BBTConfig\n    return BBTConfig\n")
    assert upward(import_graph(root)) == {"spaces": ["bbtkit.bbt"]}
