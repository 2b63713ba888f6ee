"""Shared by the IAM and resource-policy controls (public to both packages): turn a policy document found in a
property bag into violations.

A document may be a JSON string (``aws`` provider) or an object (``aws-native``, or ``pulumi.Output.json_dumps`` not
yet applied), may be wholly or partly unknown during preview, and may break the policy grammar. Each case gives a
distinct, actionable message; none is silently skipped.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Iterator, Mapping

from ps019.model import UNKNOWN, Violation, contains_unknown, is_unknown

MAX_FINDINGS_IN_MESSAGE = 3

# Stand-in for an unknown string inside an otherwise known document (a bucket ARN from another resource, typically).
# It is a specific ARN, so it never widens a grant; it only lets the known parts be analysed early.
_UNKNOWN_PLACEHOLDER = "arn:aws:ps019:::unknown-until-update"


def policy_violations(value: Any, *, kind: str, where: str, resource_label: str, can_write: bool | None = None,
                      owner_accounts: Iterable[str] = (), subject: str | None = None,
                      downgrade: Mapping[str, str] | None = None,
                      tolerate: Callable[[Any], str | None] | None = None) -> list[Violation]:
    """Check one policy document.

    ``kind``: "identity", "trust" or "resource"; ``where``: the property path for messages
    (``inlinePolicies[0].policy``); ``resource_label``: e.g. ``aws:iam/role:Role 'deployer'``. ``can_write`` and
    ``owner_accounts`` are passed to the analysis (trust and resource policies). ``subject`` replaces the default
    "<resource>: policy document at '<where>'" opening of every message. ``downgrade`` maps finding categories to
    a reason they are only advisory here (e.g. a public bucket policy on a bucket whose public access block restricts
    it); the reason is appended to each such finding. ``tolerate`` does the same per finding: it returns the reason
    a finding is only advisory here, or None (e.g. AWS-designed service access, ``ps019.iam.service_roles``).
    """
    from ps019.iam import IAM_DATA_VERSION, analyze_policy

    subject = subject or f"{resource_label}: {_kind_label(kind)} at '{where}'"
    if value is None or value == "":
        return []
    if is_unknown(value):
        return [_unverifiable(subject, where, "its value is computed from other resources")]
    if not isinstance(value, (str, Mapping)):
        return [Violation(
            f"{subject} cannot be verified: it is a {type(value).__name__}, not a JSON policy document. Fix: pass "
            "the policy as a JSON string or object (e.g. json.dumps({...}) or aws.iam.get_policy_document(...).json).",
            details={"verdict": "error", "document": where, "error": "not a JSON document"},
        )]
    partial = contains_unknown(value)
    document = _fill_unknowns(value) if partial else value
    hidden = "parts of it are computed from other resources" + (f" ({_unknown_paths(value)})" if partial else "")
    result = analyze_policy(document, kind=kind, can_write=can_write, owner_accounts=tuple(owner_accounts))
    base = {"document": where, "iam_data_version": str(IAM_DATA_VERSION)}

    if result.verdict == "error":
        if partial:
            return [_unverifiable(subject, where, hidden)]
        why = result.message if result.message.startswith("cannot be verified") else (
            f"cannot be verified: it is not a valid IAM policy: {result.message}")
        return [Violation(
            f"{subject} {why}. Fix: correct the document; AWS would reject it or read it differently than intended.",
            details={**base, "verdict": "error", "error": result.message},
        )]
    out: list[Violation] = []
    findings = list(result.findings)
    if downgrade:
        import dataclasses

        findings = [dataclasses.replace(f, advisory=True, message=f"{f.message} ({downgrade[f.category.value]})")
                    if f.category.value in downgrade and not f.advisory else f for f in findings]
    if tolerate:
        import dataclasses

        reasons = [None if f.advisory else tolerate(f) for f in findings]
        findings = [dataclasses.replace(f, advisory=True, message=f"{f.message} ({why})") if why else f
                    for f, why in zip(findings, reasons)]
    denying = [f for f in findings if not f.advisory]
    advisories = [f for f in findings if f.advisory]
    if denying:
        summary = summarise(denying)
        details = {**base, "verdict": "deny", "findings": [finding_details(f) for f in denying]}
        if partial:
            # Unknown parts could sit in a Deny or a Condition that narrows the grant: report, but do not block yet.
            return [_unverifiable(subject, where, hidden,
                                  extra=f"; from the known parts it would be denied: {summary}", details=details)]
        verb = {"trust": "trusts principals it should not", "resource": "grants access it should not"}.get(
            kind, "grants more than least privilege")
        out.append(Violation(f"{subject} {verb}: {summary}", details=details))
    elif partial:
        return [_unverifiable(subject, where, hidden, extra="; the known parts pass")]
    if advisories:
        out.append(Violation(
            f"{subject} (advisory): {summarise(advisories)}",
            details={**base, "verdict": "advisory", "advisory": True,
                     "findings": [finding_details(f) for f in advisories]},
        ))
    return out


def document_paths(props: Mapping[str, Any], spec: Iterable[tuple[str, ...]]) -> Iterator[tuple[str, Any]]:
    """Yield (printable path, value) for each document path in ``spec``; ``"*"`` walks a list.

    ``("inlinePolicies", "*", "policy")`` yields ``("inlinePolicies[0].policy", ...)`` for each entry. A list that
    is itself unknown yields one unknown value, so that it is reported rather than skipped.
    """
    for path in spec:
        yield from _walk(props, path, "")


def _walk(node: Any, path: tuple[str, ...], printed: str) -> Iterator[tuple[str, Any]]:
    if not path:
        yield printed, node
        return
    head, rest = path[0], path[1:]
    if is_unknown(node):
        yield printed or head, UNKNOWN
        return
    if head == "*":
        if isinstance(node, str):  # a list that arrived as JSON text
            try:
                node = json.loads(node)
            except ValueError:
                return
        if isinstance(node, list):
            for i, item in enumerate(node):
                yield from _walk(item, rest, f"{printed}[{i}]")
        return
    if isinstance(node, Mapping) and head in node:
        yield from _walk(node[head], rest, f"{printed}.{head}" if printed else head)


def resource_label(view: Any) -> str:
    return f"{view.type} '{view.name}'"


def _kind_label(kind: str) -> str:
    return "trust policy" if kind == "trust" else "policy document"


def _unverifiable(subject: str, where: str, why: str, extra: str = "",
                  details: Mapping[str, Any] | None = None) -> Violation:
    return Violation(
        f"{subject} cannot be verified until update: {why}{extra}. Under `pulumi up` the update pass checks it in "
        "full before the resource is created; an offline update (`ps019 up --program`) sees stand-in values for the "
        "computed parts, so it checks the rest of the document but not those values.",
        details={**(details or {}), "unverifiable": True, "document": where},
    )


def _unknown_paths(value: Any, limit: int = 3) -> str:
    """Where the unknowns sit, e.g. ``Statement[0].Resource[1], Statement[1].Principal``."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if is_unknown(node):
            found.append(path or "the document")
        elif isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(value, "")
    shown = ", ".join(found[:limit]) + (f" and {len(found) - limit} more" if len(found) > limit else "")
    return f"not yet known: {shown}"


def _fill_unknowns(value: Any) -> Any:
    if is_unknown(value):
        return _UNKNOWN_PLACEHOLDER
    if isinstance(value, Mapping):
        return {k: _fill_unknowns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_unknowns(v) for v in value]
    return value


# --- findings (the analysis core's IamFinding) ----------------------------------------------------------------------

def summarise(findings: list[Any]) -> str:
    shown = [finding_line(f, with_fix=True) for f in findings[:MAX_FINDINGS_IN_MESSAGE]]
    more = len(findings) - len(shown)
    text = " | ".join(shown) if shown else "denied by the IAM analysis"
    return text + (f" | and {more} more finding(s) (run `ps019 iam check` on the document for all)" if more > 0 else "")


def finding_category(finding: Any) -> str:
    category = getattr(finding, "category", "")
    return str(getattr(category, "value", category))


def is_full_admin(finding: Any) -> bool:
    category = finding_category(finding).lower().replace("_", " ").replace("-", " ")
    return "full admin" in category or category == "admin"


def _statements(finding: Any) -> str:
    for name in ("statements", "statement", "sids", "sid"):
        value = getattr(finding, name, None)
        if value is None or value == () or value == []:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        return ", ".join(_statement_label(s) for s in items)
    return ""


def _statement_label(statement: Any) -> str:
    for name in ("label", "sid"):
        value = getattr(statement, name, None)
        if value:
            return str(value)
    if isinstance(statement, int):
        return f"Statement[{statement}]"  # 0-based index of a statement without a Sid
    return str(statement)


def _fix(finding: Any) -> str:
    for name in ("fix", "hint", "remediation", "fix_hint"):
        value = getattr(finding, name, None)
        if value:
            return str(value)
    return ""


def finding_line(finding: Any, with_fix: bool = False) -> str:
    message = str(getattr(finding, "message", "") or finding)
    statements = _statements(finding)
    # The core's messages already name the statement ('Statement "Sid":' / 'Statement [0]:'); add it only if not.
    line = message if not statements or message.lower().startswith("statement") else f"{statements}: {message}"
    category = finding_category(finding)
    if category and category.lower() not in line.lower():
        line = f"{line} [{category}]"
    fix = _fix(finding) if with_fix else ""
    return f"{line}. Fix: {fix}" if fix else line


def finding_details(finding: Any) -> dict[str, Any]:
    severity = getattr(finding, "severity", None)
    return {
        "category": finding_category(finding),
        "severity": str(getattr(severity, "value", severity)) if severity is not None else None,
        "statements": _statements(finding),
        "message": str(getattr(finding, "message", "") or finding),
        "fix": _fix(finding),
    }
