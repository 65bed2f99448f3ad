"""The layers of the tree, proven (STYLE 3 and 21): Qt stays inside app/ui, the app never imports the training
package, no project module takes part in an import circle, and the tree keeps the sizes a newcomer can read."""
import ast
import re
from pathlib import Path

from app.paths import ROOT

QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt\d|pyqtgraph|shiboken6)\b", re.MULTILINE)
PACKAGES = ("app", "models")


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module under app/ and models/ (a package by its __init__)."""
    out = {}
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (a lazy import inside a function counts: it closes
    a circle as surely at run time). `from pkg import mod` names the module when `mod` is one."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(known(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[:len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.add(full if full in modules else known(base))
    found.discard(None)
    found.discard(name)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))
    return circles


def test_qt_is_imported_only_under_app_ui():
    offenders = []
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            if (ROOT / "app" / "ui") in path.parents:
                continue
            if QT_IMPORT.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    assert QT_IMPORT.search((ROOT / "main.py").read_text()) is None


def test_no_import_circle_and_the_app_never_imports_models():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _circles(graph) == []
    upward = {name: sorted(t for t in targets if t.split(".")[0] == "models")
              for name, targets in graph.items() if name.split(".")[0] == "app"}
    assert {k: v for k, v in upward.items() if v} == {}


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_tree_stays_readable():
    # at most 6 modules beside app/'s stage packages and 8 beside models/'s; no source file over 600 lines; main.py
    # only parses and dispatches
    flat = {folder: [p.name for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"] for folder in PACKAGES}
    assert len(flat["app"]) <= 6, flat["app"]
    assert len(flat["models"]) <= 8, flat["models"]
    long = {str(p.relative_to(ROOT)): n for folder in PACKAGES for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert long == {}
    assert len((ROOT / "main.py").read_text().splitlines()) <= 60
