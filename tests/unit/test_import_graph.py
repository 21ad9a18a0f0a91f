"""The package's import graph, read from the source (every import, at module level or inside a function;
not what only type checkers see): it has no cycles, and the runtime and the layer store stay apart — the
store uses the runtime's API, the runtime knows the store only through pyoci/layer.py, and only the command
line's entry (main.py) names both."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pyoci"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The pyoci modules a module imports: `from X import y` is X.y where that is a module, else X."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pyoci"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("pyoci"):
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def graph() -> dict[str, set[str]]:
    """module -> the modules it imports, less its own packages (the import system loads those before it)."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        targets = _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", set(files))
        edges[name] = {t for t in targets if t in files and t != name and not name.startswith(t + ".")}
    return edges


def test_the_import_graph_has_no_cycles():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node, [node])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_runtime_and_the_store_stay_apart():
    edges = graph()
    runtime = {m for m in edges if not m.startswith("pyoci.store") and m != "pyoci.main"}
    reaching_store = sorted(m for m in runtime if any(t.startswith("pyoci.store") for t in edges[m]))
    assert reaching_store == []
    store_uses = {t for m, ts in edges.items() if m.startswith("pyoci.store") for t in ts if not t.startswith("pyoci.store")}
    assert "pyoci.cli" not in store_uses and "pyoci.main" not in store_uses
    assert "pyoci.layer" in store_uses  # the one interface: the annotation and the overlay's layout
