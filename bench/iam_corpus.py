"""The real-program IAM corpus (tests/data/iam/corpus/*.json): each grant a program makes, with a hand-judged verdict.

Shared by tests/test_iam_corpus.py and bench/iam_bench.py (which runs ps019 and the peers on the same documents).
A grant is one of:

* ``{"kind": "identity"|"trust"|"resource", "document": {...}}`` - a policy document as the program writes it
  (computed names and ARNs replaced by placeholders); trust grants may say ``"can_write"``;
* ``{"kind": "managed", "policy_arn": "arn:aws:iam::aws:policy/..."}`` - an AWS managed policy attached by ARN.
  ps019 judges it by content from its dataset; the peers get the same default-version document (when the dataset
  has it), so every tool sees the same text. ``"role_trust": "<grant id>"`` names the trust grant of the role it is
  attached to (``"role_trust_document"`` when the role's trust is not itself a grant of the program, with
  ``"role_trust_from"``): ps019 reads it as PS019-IAM-003 reads the joined role (AWS-designed service access,
  ``ps019.iam.service_roles``); the peers judge the policy document alone, as they would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "iam" / "corpus"
OWNER = "123456789012"  # the placeholder account every corpus document's own ARNs use


def sources() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, json.loads(p.read_text())) for p in sorted(CORPUS.glob("*.json"))]


def grants() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(id "<file stem>/<grant id>", grant, source). A managed grant's ``role_trust`` is resolved to the trust
    grant's document as ``role_trust_document``."""
    for path, data in sources():
        by_id = {g["id"]: g for g in data["grants"]}
        for grant in data["grants"]:
            if "role_trust" in grant:
                grant = {**grant, "role_trust_document": by_id[grant["role_trust"]]["document"]}
            yield f"{path.stem}/{grant['id']}", grant, data["source"]


def document_of(grant: dict[str, Any]) -> tuple[str, str | None]:
    """(analysis kind, document text) - the text every tool gets; None for a managed ARN the dataset lacks."""
    if grant["kind"] == "managed":
        from ps019.iam import deprecated_replacement, managed_policy

        document = managed_policy(grant["policy_arn"])
        if document is None and (replaced := deprecated_replacement(grant["policy_arn"])) is not None:
            document = replaced.document  # what PS019-IAM-003 judges a deprecated policy by
        return "identity", json.dumps(document) if document is not None else None
    return grant["kind"], json.dumps(grant["document"])


def ps019_verdict(grant: dict[str, Any]) -> tuple[str, list[str]]:
    """("allow"|"deny"|"error", finding messages) as the ps019 controls decide: a managed ARN missing from the dataset
    is an advisory (allowed), every other grant goes through analyze_policy."""
    from ps019.iam import analyze_policy

    kind, text = document_of(grant)
    if text is None:
        return "allow", [f"advisory: {grant['policy_arn']} is not in the managed-policy dataset"]
    result = analyze_policy(text, kind, can_write=grant.get("can_write"), owner_accounts=[OWNER])
    if grant["kind"] == "managed" and "role_trust_document" in grant:
        result = with_role_trust(result, grant["policy_arn"], grant["role_trust_document"])
    return result.verdict, [f.message for f in result.findings]


def with_role_trust(result: Any, policy_arn: str, trust: Any) -> Any:
    """``result`` (a managed policy's analysis) as PS019-IAM-003 reads it on a role with this trust: an AWS
    service-role policy on a role only its service can assume has its operational findings as advisories."""
    from ps019.iam import managed_policy_info
    from ps019.iam.service_roles import service_design, trust_admits_only

    info = managed_policy_info(policy_arn)
    design = service_design(info.name) if info is not None else None
    if design is not None and trust_admits_only(design, trust).ok:
        return design.apply(result)
    return result
