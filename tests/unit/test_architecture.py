"""Which way imports go (ARCHITECTURE.md), checked on the source: layers, pure cores, no cycles.

Only module-level imports count: a function-level import is a deliberate lazy edge (a
heavy client loaded on first use), and imports under ``if TYPE_CHECKING:`` never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "tickerlake"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported (absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                found.add(module)
                # ``from pkg import sub`` may import a submodule.
                found.update(f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {
    name: {m for m in _top_level_imports(path) if m in MODULES and m != name}
    for name, path in MODULES.items()
}
EXTERNAL = {name: {m.split(".")[0] for m in _top_level_imports(path)} for name, path in MODULES.items()}


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            # A package importing its own submodules (re-exports) is not a cycle of concern.
            if len(component) > 1 and not all(_under(c, min(component, key=len)) for c in component):
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            strongconnect(v)
    assert not cycles, cycles


# Lower layers never import higher ones.
_SHELLS = ("tickerlake.service", "tickerlake.web", "tickerlake.cli")
_HIGHER = {
    "tickerlake.config": ("tickerlake.lake", "tickerlake.stream", *_SHELLS),
    "tickerlake.errors": ("tickerlake.lake", "tickerlake.stream", *_SHELLS),
    "tickerlake.insights": (
        "tickerlake.lake",
        "tickerlake.query",
        "tickerlake.stream",
        "tickerlake.sources",
        *_SHELLS,
    ),
    "tickerlake.lake": ("tickerlake.stream", "tickerlake.insights", *_SHELLS),
    "tickerlake.sources": ("tickerlake.stream", "tickerlake.query", *_SHELLS),
    "tickerlake.query": ("tickerlake.stream", *_SHELLS),
    "tickerlake.stream": _SHELLS,
    # The service layer is below both shells; the shells do not import each other.
    "tickerlake.service": ("tickerlake.web", "tickerlake.cli"),
    "tickerlake.web": ("tickerlake.cli",),
    "tickerlake.cli": ("tickerlake.web.api", "tickerlake.web.data"),
}


@pytest.mark.parametrize("layer", sorted(_HIGHER))
def test_layers_import_downwards_only(layer: str) -> None:
    bad = {
        (name, dep)
        for name, deps in GRAPH.items()
        if _under(name, layer)
        for dep in deps
        if _under(dep, *_HIGHER[layer])
    }
    assert not bad, sorted(bad)


# Pure cores: no I/O clients, no filesystem or network libraries at import time.
_PURE = (
    "tickerlake.insights",
    "tickerlake.lake.actions",
    "tickerlake.lake.inference",
    "tickerlake.stream.schema",
    "tickerlake.stream.ticks",
    "tickerlake.stream.live.core",
)
_CLIENTS = {
    "duckdb",
    "pyiceberg",
    "confluent_kafka",
    "fastapi",
    "starlette",
    "uvicorn",
    "yfinance",
    "sqlalchemy",
}


@pytest.mark.parametrize("core", _PURE)
def test_pure_cores_import_no_client(core: str) -> None:
    bad = {(name, lib) for name, libs in EXTERNAL.items() if _under(name, core) for lib in libs & _CLIENTS}
    assert not bad, sorted(bad)


def test_only_the_kafka_wrapper_imports_the_kafka_client() -> None:
    users = {name for name, libs in EXTERNAL.items() if "confluent_kafka" in libs}
    # The dev broker's own health probe is part of the dev-services package.
    assert users <= {"tickerlake.stream._kafka", "tickerlake.services.kafka"}, sorted(users)
