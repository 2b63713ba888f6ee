"""House rule for ``ps019.evidence`` (issue 10, item 6): imports run one way. The back ends depend on the store
interface, a registry chosen by URL scheme opens them, and nothing in the package reaches up into the pack, the gate,
the engine or the CLI. Read from the source (every ``import``, including those inside functions), so a lazy import
cannot hide a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sdk" / "ps019" / "evidence"
BACKENDS = {"sqlite_store", "pg_store", "s3_store"}
UPWARD = ("ps019.pack", "ps019.gate", "ps019.cli", "ps019.engine", "ps019.controls")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            if node.module == "ps019.evidence":
                out.update(f"ps019.evidence.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _graph() -> dict[str, set[str]]:
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for name, path in modules.items():
        deps = {m.rsplit(".", 1)[-1] for m in _imports(path) if m.startswith("ps019.evidence.")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_no_module_reaches_up_out_of_the_evidence_package():
    offenders = sorted(f"{p.stem} imports {m}" for p in PACKAGE.glob("*.py") for m in _imports(p)
                       if m.startswith(UPWARD))
    assert offenders == []


def test_evidence_imports_form_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(trail[trail.index(dep):] + [dep]) if dep in trail else f"{node}->{dep}")
            elif dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_backends_depend_on_the_interface_only(backend):
    deps = _graph()[backend]
    assert "store" in deps
    assert not deps & (BACKENDS | {"registry", "emit", "settings"})


def test_the_interface_imports_no_backend_and_the_registry_opens_them_by_scheme(tmp_path):
    assert not _graph()["store"] & (BACKENDS | {"registry"})
    from ps019.evidence import open_store, register_scheme
    from ps019.evidence.registry import schemes
    from ps019.evidence.sqlite_store import SqliteStore

    assert {"sqlite", "s3", "postgresql", "postgres"} <= set(schemes())
    with open_store(f"sqlite:///{tmp_path}/e.db") as store:
        assert isinstance(store, SqliteStore)
    opened = []
    register_scheme("memtest", lambda url, settings: opened.append(url) or SqliteStore(tmp_path / "m.db"))
    with open_store("memtest://x"):
        pass
    assert opened == ["memtest://x"]


def test_an_unknown_scheme_is_a_one_line_input_error():
    from ps019.errors import InputError
    from ps019.evidence import open_store

    with pytest.raises(InputError, match="unsupported evidence store URL scheme: 'ftp'"):
        open_store("ftp://example/x")
