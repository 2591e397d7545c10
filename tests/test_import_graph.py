"""bbtkit's layers, proved from its imports (every import statement, at any depth, lazy ones included): no
cycle, no layer importing a layer above it, and the black-box rule: optimizers, the tuning pieces, methods and
the course reach the model only through the API layer. The white box is set apart by folder (``whitebox/``)."""
import ast
import shutil
from pathlib import Path

import bbtkit as bk

PACKAGE = Path(bk.__file__).parent
# Bottom to top. "" is the package root's foundations (runtime, fields, checksums, guards), which every layer uses;
# serve (the class server) sits on top: it holds the model and answers the api layer's client (api/remote).
LAYERS = ("", "data", "model", "api", "optim", "tuning", "whitebox", "methods", "course", "serve")
ENTRY = {"bbtkit", "bbtkit.__main__"}  # the front door (``import bbtkit as bk``) and the command line import every layer
BLACK_BOX = {"optim", "tuning", "methods", "course"}  # layers that see the model only through api/
INSIDE = ("bbtkit.model", "bbtkit.whitebox", "transformers")  # what opens the box
# One hand-over, by name: IPLConfig(mode="gradient") asks for the paper's white-box original, which lives in whitebox/.
HANDOVER = {("bbtkit.methods.ipl", "bbtkit.whitebox.ipl_gradient")}


def module_files(root: Path) -> dict[str, Path]:
    """{dotted module name: its file} for every module of the package at root."""
    return {".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
            for p in sorted(root.rglob("*.py"))}


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Every name module imports, absolute: a module of the package where it names one (``from . import inject``
    names bbtkit.model.inject, ``from .api import X`` names the module it comes from), else the name itself
    (``transformers.models``)."""
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = pkg.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            target = ".".join(x for x in (base, node.module or "") if x)
            out |= {f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out - {module}


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports} (a subpackage's ``__init__`` counts only as the package)."""
    files = module_files(root)
    plain = {m for m, p in files.items() if p.name != "__init__.py"}
    return {m: imports_of(m, p, set(files)) & plain for m, p in files.items()}


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


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Every import of a module in a higher layer than the importer's."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    return sorted((a, b) for a in graph if a not in ENTRY for b in graph[a] if rank[layer_of(b)] > rank[layer_of(a)])


def reads_the_model_inside(path: Path) -> list[int]:
    """Lines that reach through an LM to the network it wraps: ``model.model``, ``lm.model``, ``x.model.model``."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and node.attr == "model"
            and (isinstance(node.value, ast.Name) and node.value.id in ("model", "lm")
                 or isinstance(node.value, ast.Attribute) and node.value.attr == "model")]


def opens_the_box(root: Path) -> dict[str, list]:
    """{module in a black-box layer: what in it opens the box}: imports of model/, whitebox/ or transformers
    (but the one hand-over), and lines that read the network inside an LM."""
    files = module_files(root)
    found = {}
    for m, p in files.items():
        if layer_of(m) in BLACK_BOX:
            bad = sorted(t for t in imports_of(m, p, set(files))
                         if t.startswith(INSIDE) and (m, t) not in HANDOVER)
            lines = reads_the_model_inside(p)
            if bad or lines:
                found[m] = bad + [f"line {n} reads .model" for n in lines]
    return found


def planted(tmp_path: Path, file: str, code: str) -> Path:
    """A copy of the package with code appended to one of its files."""
    root = tmp_path / "bbtkit"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    with open(root / file, "a") as f:
        f.write(code)
    return root


def test_the_tree_shows_the_layers():
    layers = {layer_of(m) for m in module_files(PACKAGE)}
    assert layers == set(LAYERS)
    root = sorted(m for m in module_files(PACKAGE) if layer_of(m) == "" and m not in ENTRY)
    assert root == ["bbtkit.checksums", "bbtkit.fields", "bbtkit.guards", "bbtkit.runtime"]


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert "bbtkit.model.forward" in graph["bbtkit.api.blackbox"]  # the parser sees imports
    assert "bbtkit.methods.bbt" in graph["bbtkit.methods.registry"]
    assert cycles(graph) == []


def test_a_planted_cycle_is_found_lazy_or_not(tmp_path):
    root = planted(tmp_path, "model/inject.py",  # the lowest layer reaching up to a method, inside a function
                   "\n\ndef _planted():\n    from ..methods.bbt import run_bbt\n    return run_bbt\n")
    found = cycles(import_graph(root))
    assert any({"bbtkit.model.inject", "bbtkit.methods.bbt"} <= set(c) for c in found), found


def test_no_layer_imports_a_layer_above_it(tmp_path):
    assert upward(import_graph(PACKAGE)) == []
    root = planted(tmp_path, "tuning/spaces.py",  # a space reaching up to a method, inside a function
                   "\n\ndef _planted():\n    from ..methods.bbt import BBTConfig\n    return BBTConfig\n")
    assert upward(import_graph(root)) == [("bbtkit.tuning.spaces", "bbtkit.methods.bbt")]


def test_black_box_layers_reach_the_model_only_through_the_api():
    assert opens_the_box(PACKAGE) == {}
    graph = import_graph(PACKAGE)
    assert "bbtkit.model.inject" in graph["bbtkit.whitebox.access"]  # the white box may: it is set apart by folder
    assert "bbtkit.whitebox.access" in graph["bbtkit.whitebox.mezo"]


def test_a_planted_inject_or_model_read_in_a_method_is_found(tmp_path):
    root = planted(tmp_path, "methods/bbt.py", "\n\ndef _planted(lm):\n    from ..model import inject\n"
                   "    import transformers.models\n    return inject, lm.model.config\n")
    bad = opens_the_box(root)
    assert list(bad) == ["bbtkit.methods.bbt"]
    assert bad["bbtkit.methods.bbt"][:2] == ["bbtkit.model.inject", "transformers.models"]
    assert len(bad["bbtkit.methods.bbt"]) == 3 and bad["bbtkit.methods.bbt"][2].endswith("reads .model")


def test_the_model_read_check_allows_the_api_view(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("def f(api, lm):\n    return api.model.hidden_size, lm.model.config, api.model.model\n")
    assert reads_the_model_inside(bad) == [2, 2]  # api.model (the LM's view) is allowed


def test_one_module_defines_METHODS_the_registry():
    """One name, one meaning: the calibrations, ZO optimizers, reasoning strategies and leaderboard rows
    are named for what they hold."""
    owners = sorted(m for m, p in module_files(PACKAGE).items()
                    if any(getattr(t, "id", None) == "METHODS" for n in ast.parse(p.read_text()).body
                           for t in (n.targets if isinstance(n, ast.Assign) else
                                     [n.target] if isinstance(n, ast.AnnAssign) else [])))
    assert owners == ["bbtkit.methods.registry"]
    assert isinstance(bk.METHODS, dict) and all(callable(m.run) for m in bk.METHODS.values())
    assert all(layer_of(m.run.__module__) in ("methods", "whitebox") for m in bk.METHODS.values())
