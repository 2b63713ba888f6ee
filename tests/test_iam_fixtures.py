"""Every fixture under tests/data/iam/<kind>/<verdict>/ gets that verdict; deny fixtures named
``<category>--<case>.json`` must report that category; error fixtures must carry a precise message."""

from __future__ import annotations

from pathlib import Path

import pytest

from ps019.iam import Category, analyze_policy

ROOT = Path(__file__).parent / "data" / "iam"
FIXTURES = sorted(ROOT.glob("*/*/*.json"))


def _id(path: Path) -> str:
    return "/".join(path.relative_to(ROOT).parts)


def test_fixture_tree_covers_every_kind_and_verdict():
    seen = {(p.parts[-3], p.parts[-2]) for p in FIXTURES}
    assert seen == {(k, v) for k in ("identity", "trust") for v in ("allow", "deny", "error")}


def test_every_category_has_a_deny_fixture():
    named = {p.stem.split("--")[0] for p in FIXTURES if p.parts[-2] == "deny"}
    assert named == {c.value for c in Category}


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture_verdict_and_category(path: Path):
    kind, verdict = path.parts[-3], path.parts[-2]
    result = analyze_policy(path.read_bytes(), kind=kind)
    detail = result.message or [f.message for f in result.findings]
    assert result.verdict == verdict, detail
    if verdict == "deny":
        expected = Category(path.stem.split("--")[0])
        assert expected in {f.category for f in result.findings}, detail
        for finding in result.findings:
            assert finding.message and finding.fix
            assert finding.statements, "a finding names the statement(s) responsible"
    elif verdict == "allow":
        assert result.findings == []
    else:
        assert result.message and not result.message.startswith("internal error"), result.message
        assert result.findings == []
