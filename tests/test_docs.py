"""The docs that are generated from, or claim things about, the code stay true."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STANDARDS = ROOT.parent / "shared" / "standard"
CLAUSE_MAP = (ROOT / "docs" / "clause-map.md").read_text()

# Headings and template furniture of the two standards: not clauses.
_NOT_CLAUSES = {
    "Purpose", "Scope", "Minimum Gate Categories", "Suggested Evidence Pack", "Approval Model",
    "Post-Release Verification", "Metrics and Continuous Improvement", "1. Purpose and scope", "2. Change classes",
    "3. Required controls", "4. Evidence expectations",
}


def _normalise(text: str) -> str:
    return " ".join(text.split())


def ps019_clauses() -> list[str]:
    lines = [_normalise(x) for x in (STANDARDS / "PS-019-secure-change-management.txt").read_text().splitlines()]
    body = lines[lines.index("1. Purpose and scope", lines.index("4. Evidence expectations") + 1):]
    body = body[: body.index("Approval and revision record")]
    clauses = [x for x in body if x and x not in _NOT_CLAUSES]
    # Document-control rows that ask for something: review cadence, exceptions, and the revision record.
    return clauses + ["Review cadence: Annual or on material change", "Exceptions: [link to exception process]",
                      "Approval and revision record"]


def release_gate_clauses() -> list[str]:
    lines = [_normalise(x) for x in (STANDARDS / "release-security-gates.txt").read_text().splitlines()]
    return [x for x in lines if x and x not in _NOT_CLAUSES]


@pytest.mark.skipif(not STANDARDS.is_dir(), reason="the shared standards are not beside this checkout")
@pytest.mark.parametrize("clause", ps019_clauses() + release_gate_clauses() if STANDARDS.is_dir() else [])
def test_every_clause_of_both_standards_has_a_row(clause):
    assert _normalise(clause) in _normalise(CLAUSE_MAP), clause


def _test_references() -> list[str]:
    return sorted(set(re.findall(r"tests/[\w/]+\.py(?:::\w+)?", CLAUSE_MAP)))


@pytest.mark.parametrize("reference", _test_references())
def test_every_test_the_clause_map_names_exists(reference):
    path, _, name = reference.partition("::")
    assert (ROOT / path).is_file(), path
    if name:
        tree = ast.parse((ROOT / path).read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert name in defined, reference


def test_control_catalogue_is_generated_from_the_registry():
    generated = subprocess.run([sys.executable, "-m", "ps019.cli", "controls", "--format", "markdown"],
                               capture_output=True, text=True, check=True).stdout
    committed = (ROOT / "docs" / "controls.md").read_text()
    assert generated in committed, "docs/controls.md is stale: regenerate it with `ps019 controls --format markdown`"
