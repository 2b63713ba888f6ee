"""Every fixture under tests/data/iam/<kind>/<verdict>/ gets that verdict; deny fixtures named
``<category>--<case>.json`` must report that category (so must allow fixtures named that way, as an advisory);
error fixtures must carry a precise message.

Trust fixtures whose name contains ``write-role`` are judged as the trust policy of a role that can write
(``can_write=True``); the others as a role whose permissions are not all visible (``None``). Resource fixtures are
judged for owner account 123456789012, the account every fixture's own ARNs use (for no owner when the name contains
``owner-unknown``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ps019.iam import Category, analyze_policy

ROOT = Path(__file__).parent / "data" / "iam"
FIXTURES = sorted(p for p in ROOT.glob("*/*/*.json") if p.parts[-3] in ("identity", "trust", "resource"))
OWNER = "123456789012"


def judge(path: Path):
    kind = path.parts[-3]
    if kind == "trust":
        return analyze_policy(path.read_bytes(), kind="trust", can_write=True if "write-role" in path.stem else None)
    if kind == "resource":
        owners = [] if "owner-unknown" in path.stem else [OWNER]
        return analyze_policy(path.read_bytes(), kind="resource", owner_accounts=owners)
    return analyze_policy(path.read_bytes(), kind=kind)


def _id(path: Path) -> str:
    return "/".join(path.relative_to(ROOT).parts)


def test_fixture_tree_covers_every_kind_and_verdict():
    seen = {(p.parts[-3], p.parts[-2]) for p in FIXTURES}
    assert seen == {(k, v) for k in ("identity", "trust", "resource") for v in ("allow", "deny", "error")}


def test_every_category_has_a_named_fixture():
    named = {p.stem.split("--")[0] for p in FIXTURES if "--" in p.stem}
    assert named == {c.value for c in Category}


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_fixture_verdict_and_category(path: Path):
    kind, verdict = path.parts[-3], path.parts[-2]
    result = judge(path)
    detail = result.message or [f.message for f in result.findings]
    assert result.verdict == verdict, detail
    if verdict == "deny":
        expected = Category(path.stem.split("--")[0])
        assert expected in {f.category for f in result.findings}, detail
        for finding in result.findings:
            assert finding.message and finding.fix
            assert finding.statements, "a finding names the statement(s) responsible"
    elif verdict == "allow":
        assert result.denying == [], detail
        if "--" in path.stem:  # an allowed document with an advisory of the named category
            expected = Category(path.stem.split("--")[0])
            assert {f.category for f in result.findings} == {expected}, detail
    else:
        assert result.message and not result.message.startswith("internal error"), result.message
        assert result.findings == []


def test_every_oidc_provider_has_allow_and_deny_fixtures():
    import json

    from ps019.iam.trust import provider_for

    seen: dict[str, set] = {}
    for path in FIXTURES:
        if path.parts[-3] != "trust":
            continue
        statements = json.loads(path.read_text())["Statement"]
        for stmt in statements if isinstance(statements, list) else [statements]:
            federated = stmt.get("Principal", {}).get("Federated") if isinstance(stmt.get("Principal"), dict) else None
            for arn in [federated] if isinstance(federated, str) else federated or []:
                host = arn.split(":oidc-provider/", 1)[-1] if ":oidc-provider/" in arn else None
                keys = [k for op in stmt.get("Condition", {}).values() for k in op]
                host = host or next((k.rsplit(":", 1)[0] for k in keys if k.endswith(":sub")), None)
                if host:
                    seen.setdefault(provider_for(host).name, set()).add(path.parts[-2])
    for provider in ("github", "gitlab", "pulumi", "terraform", "eks", "generic"):
        assert {"allow", "deny"} <= seen.get(provider, set()), provider
