"""The house rules of the code's shape (brief: "imports run one way: edges depend on the core, never the reverse, and
no package reaches into another's private modules"), read from the source: every ``import``, including those inside
functions, so a lazy import cannot hide a reverse dependency or a cycle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "sdk" / "ps019"
# The core: plain data and pure decisions. The edges talk to the world (AWS, OIDC issuers, the engine, the terminal).
CORE = {"model", "errors", "digest", "logging", "iam", "evidence", "gate", "controls", "output"}
EDGES = {"aws", "oidc", "pack", "engine", "cli"}


def _package(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out.extend(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return [m for m in out if m.startswith("ps019.")]


def _graph() -> dict[str, dict[str, set[str]]]:
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in ROOT.rglob("*.py"):
        here = _package(path)
        for module in _imports(path):
            there = module.split(".")[1]
            if there != here:
                graph[here][there].add(str(path.relative_to(ROOT)))
    return graph


def test_every_package_is_classified():
    packages = {_package(p) for p in ROOT.rglob("*.py")} - {"__init__", "__main__", "py"}
    assert packages <= CORE | EDGES, f"classify {sorted(packages - CORE - EDGES)} as core or edge in this test"


def test_the_core_never_imports_an_edge():
    graph = _graph()
    offenders = sorted(f"{src} imports ps019.{edge}" for pkg in CORE for edge in EDGES
                       for src in graph.get(pkg, {}).get(edge, ()))
    assert offenders == []


def test_packages_import_in_no_circle():
    graph = _graph()
    cycles = sorted(f"{a} <-> {b} ({sorted(graph[a][b])[0]}, {sorted(graph[b][a])[0]})"
                    for a in graph for b in graph[a] if a < b and a in graph.get(b, {}))
    assert cycles == []


def test_no_package_reaches_into_another_packages_private_modules():
    offenders = []
    for path in ROOT.rglob("*.py"):
        here = _package(path)
        for module in _imports(path):
            parts = module.split(".")
            if parts[1] != here and any(p.startswith("_") and not p.startswith("__") for p in parts[2:]):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert sorted(set(offenders)) == []
