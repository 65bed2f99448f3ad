"""models/ has no import cycle: every `import models.x` / `from models.x import ...` / `from models import x` in
models/*.py, at module level or inside a function, is an edge; the graph must be acyclic."""
import ast
from pathlib import Path

from app.paths import ROOT


def import_graph(folder: Path) -> dict[str, set[str]]:
    names = {p.stem for p in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for m in mods:
                parts = m.split(".")
                if parts[0] == "models" and len(parts) > 1 and parts[1] in names:
                    edges.add(parts[1])
        graph[path.stem] = edges - {path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_models_has_no_import_cycle():
    graph = import_graph(ROOT / "models")
    assert {"train", "cv", "loading", "checkpoints", "runtime", "heads", "cli"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_shared_helpers_are_leaves_of_the_training_modules():
    graph = import_graph(ROOT / "models")
    for leaf in ("runtime", "checkpoints", "loading", "cli", "heads", "temporal"):
        assert not graph[leaf] & {"train", "cv", "export", "release", "distill", "compare"}, leaf
