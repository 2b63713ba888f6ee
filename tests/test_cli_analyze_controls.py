"""`ps019 controls`: the catalogue the pack's policies are generated from, in three formats."""

from __future__ import annotations

import json

import pytest

from ps019.cli import main
from ps019.controls.registry import all_controls


def _run(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["controls", *args])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 0
    return out


def test_json_lists_every_control_with_its_clause(capsys):
    rows = json.loads(_run(capsys, "--format", "json"))
    assert [r["id"] for r in rows] == [c.id for c in all_controls()]
    for row in rows:
        assert row["clause"] and row["title"] and row["level"] in ("advisory", "mandatory", "disabled", "remediate")
        assert row["severity"] in ("low", "medium", "high", "critical")


def test_markdown_and_table(capsys):
    markdown = _run(capsys, "--format", "markdown")
    assert markdown.startswith("| ID | Title | Clause | Level | Severity | Applies to |")
    table_rows = [line for line in markdown.splitlines() if line.startswith("| [PS019-")]
    assert len(table_rows) == len(all_controls())
    for control in all_controls():  # and a section per control with its rationale and fix
        assert f"## {control.id}" in markdown and control.remediation in markdown
    table = _run(capsys)
    for control in all_controls():
        assert control.id in table
