"""Resource-based policies (bucket, repository, key, queue, topic, secret, event bus, REST API policies): who outside
the owning account may do what (docs/iam.md, "Resource policies").

For each Allow statement, what it still grants after unconditional Denies (``analysis.effective_pieces``) is sorted
into reads, writes and permission changes, and its principals into the public (``"*"``, NotPrincipal), accounts and
services:

* public, not bounded by a fixed source or caller condition: writes and permission changes are critical, reads high;
* another account than the owner: writes and permission changes are high (reads by a named account are bounded);
* the owner unknown and an account named: an advisory asking for the owner;
* a service principal without aws:SourceArn/aws:SourceAccount/aws:SourceOrgID: the confused-deputy advisory.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from ps019.iam import index as _ix
from ps019.iam.analysis import (
    Category,
    IamFinding,
    _Collector,
    _literal,
    _positive,
    _everyone,
    _Stmt,
    account_of,
    action_set,
    effective_pieces,
    principal_bounding,
    resource_set,
)
from ps019.iam._sets import action_minus, resource_minus
from ps019.model import Severity

UNKNOWN_ARN = "arn:aws:ps019:::unknown-until-update"

# Keys that tie a request to fixed sources (S3's definition of "not public", plus the organisation keys): a
# statement with one of them, positive operator and fixed values, is bounded.
SOURCE_KEYS = frozenset({
    "aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourcevpc", "aws:sourcevpce",
    "aws:sourceorgid", "aws:sourceorgpaths", "kms:calleraccount",
})
# A source IP range is narrow when it holds at most 65,536 addresses (IPv4 /16, IPv6 /48).
NARROW_V4_PREFIX = 16
NARROW_V6_PREFIX = 48


def _narrow_ip(values: list[str]) -> bool:
    try:
        nets = [ipaddress.ip_network(v.strip(), strict=False) for v in values]
    except ValueError:
        return False
    return bool(nets) and all(n.prefixlen >= (NARROW_V4_PREFIX if n.version == 4 else NARROW_V6_PREFIX)
                              for n in nets)


def _fixed_source(key: str, values: list[str]) -> bool:
    if key in ("aws:sourcearn",):
        # an ARN with a fixed account, or a fixed ARN (S3 bucket ARNs carry no account)
        return all(account_of(v) is not None or not _ix.has_wildcard(v) for v in values) and bool(values)
    return _literal(values)


def bounding_keys(stmt: _Stmt) -> list[str]:
    """The conditions that bound who may use a grant: fixed callers (principal_bounding), fixed sources, a narrow
    aws:SourceIp range."""
    found = list(principal_bounding(stmt))
    for op, key, values in stmt.conditions:
        if key in SOURCE_KEYS and _positive(op) and _fixed_source(key, values):
            found.append(key)
        elif key == "aws:sourceip" and op.removeprefix("foranyvalue:") == "ipaddress" and _narrow_ip(values):
            found.append(key)
    return found


_NEGATED = {"stringnotequals", "stringnotequalsignorecase", "stringnotlike", "arnnotequals", "arnnotlike",
            "notipaddress"}


def _deny_bound(stmt: _Stmt) -> bool:
    """A Deny for everyone whose every condition is a negated test of a bounding key with fixed values ("deny
    unless the request comes from vpce-1a2b3c4d"): the Allows it covers are bounded by that key."""
    if stmt.effect != "Deny" or not stmt.conditions or stmt.not_principal is not None or not _everyone(stmt.principal):
        return False
    for op, key, values in stmt.conditions:
        if op.endswith("ifexists") or op.startswith(("forallvalues:", "foranyvalue:")) or op not in _NEGATED:
            return False
        positive = _Stmt(index=0, label=0, effect="Allow", actions=[], not_actions=None, resources=None,
                         not_resources=None, conditions=[(op.replace("not", "", 1), key, values)])
        if not bounding_keys(positive):
            return False
    return True


def _bounded_by_deny(stmt: _Stmt, pieces, statements: list[_Stmt]) -> bool:
    for deny in statements:
        if not _deny_bound(deny):
            continue
        d_actions = action_set(deny)
        d_resources = resource_set(deny)
        if all(action_minus(a, d_actions).empty and resource_minus(r, d_resources).empty for a, r in pieces):
            return True
    return False


def _service_source_bounded(stmt: _Stmt) -> bool:
    return any(k in ("aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourceorgid",
                     "aws:sourceorgpaths") for k in bounding_keys(stmt))


_ORDER = ("permissions", "write", "read")


def _levels(patterns: Iterable[str], comp: bool) -> tuple[dict[str, list[str]], list[str]]:
    """({level: action names}, unknown action patterns); levels are "read", "write", "permissions"."""
    levels: dict[str, list[str]] = {}
    unknown: list[str] = []
    if comp:
        text = "every action" + (f" except {', '.join(patterns)}" if patterns else "")
        return {lvl: [text] for lvl in _ORDER}, []
    for pattern in patterns:
        svc, _, act = pattern.partition(":")
        if set(act) <= {"*"}:
            if _ix.has_wildcard(svc) or _ix.service(svc):
                for lvl in _ORDER:
                    levels.setdefault(lvl, []).append(pattern)
            else:
                unknown.append(pattern)
            continue
        matches = _ix.expand(pattern) if _ix.has_wildcard(pattern) else (
            ((pattern, *_ix.lookup(pattern)),) if _ix.lookup(pattern) else ())
        if not matches:
            unknown.append(pattern)
        for _lower, canonical, code in matches:
            level = code[:1]
            lvl = "read" if level in ("R", "L") else "permissions" if level == "P" else "write"
            name = pattern if _ix.has_wildcard(pattern) else canonical
            if name not in levels.setdefault(lvl, []):
                levels[lvl].append(name)
    return levels, unknown


def _names(levels: dict[str, list[str]], worst: tuple[str, ...]) -> str:
    shown: list[str] = []
    for lvl in worst:
        shown.extend(n for n in levels.get(lvl, ()) if n not in shown)
    return ", ".join(shown[:6]) + (f" and {len(shown) - 6} more" if len(shown) > 6 else "")


def _principals(stmt: _Stmt) -> tuple[bool, list[str], list[str], list[str]]:
    """(public, accounts, services, other named principals)."""
    if stmt.not_principal is not None:
        return True, [], [], []
    principal = stmt.principal
    if principal == "*":
        return True, [], [], []
    public, accounts, services, others = False, [], [], []
    for entry in principal.get("AWS", ()):
        if entry == UNKNOWN_ARN:
            others.append("<computed>")
        elif entry == "*" or _ix.has_wildcard(entry):
            public = True
        elif (acct := account_of(entry)) is not None:
            accounts.append(acct)
        else:
            others.append(entry)  # CloudFront origin access identities and other AWS-owned principals
    services.extend(principal.get("Service", ()))
    others.extend(principal.get("CanonicalUser", ()))
    others.extend(principal.get("Federated", ()))
    return public, accounts, services, others


def analyze_resource(statements: list[_Stmt], owner_accounts: Any = (), service: str | None = None
                     ) -> list[IamFinding]:
    owners = {str(a) for a in (owner_accounts or ()) if a}
    if not owners:  # the resource's own ARN names its account (SQS, SNS, KMS, Lambda, Secrets Manager, ...)
        owners = {a for st in statements for r in (st.resources or ()) if (a := account_of(r))}
    out = _Collector()
    for stmt in statements:
        if stmt.effect != "Allow":
            continue
        pieces = effective_pieces(stmt, statements)
        if not pieces:
            continue
        lab = (stmt.label,)
        levels: dict[str, list[str]] = {}
        unknown: list[str] = []
        for actions, _resources in pieces:
            lv, unk = _levels(actions.patterns, actions.comp)
            for lvl, names in lv.items():
                levels.setdefault(lvl, []).extend(n for n in names if n not in levels[lvl])
            unknown.extend(unk)
        for pattern in unknown:
            out.add("unknown_action", Category.UNVERIFIABLE, Severity.MEDIUM, lab, pattern,
                    "cannot be verified: an action the pinned IAM data does not know")
        public, accounts, services, _others = _principals(stmt)
        bounded = bool(bounding_keys(stmt)) or _bounded_by_deny(stmt, pieces, statements)
        writes = {"write", "permissions"} & set(levels)
        if public and not bounded:
            who = "NotPrincipal (everyone but the listed)" if stmt.not_principal is not None else 'anyone ("*")'
            if "permissions" in levels:
                out.add("public", Category.PUBLIC_ACCESS, Severity.CRITICAL, lab, "",
                        f"lets {who} change this resource's permissions or policy: {_names(levels, _ORDER)}")
            elif writes:
                out.add("public", Category.PUBLIC_ACCESS, Severity.CRITICAL, lab, "",
                        f"lets {who} perform write actions on this resource: {_names(levels, _ORDER)}")
            elif levels:
                out.add("public", Category.PUBLIC_ACCESS, Severity.HIGH, lab, "",
                        f"lets {who} read this resource: {_names(levels, _ORDER)}")
        if accounts and writes and not any(k in ("aws:principalorgid", "aws:principalorgpaths")
                                           for k in bounding_keys(stmt)):
            foreign = sorted({a for a in accounts if a not in owners})
            kind = "change the permissions of" if "permissions" in levels else "write to"
            if owners and foreign:
                out.add("cross_account", Category.CROSS_ACCOUNT, Severity.HIGH, lab, "",
                        f"lets account(s) {', '.join(foreign)} outside the owning account "
                        f"({', '.join(sorted(owners))}) {kind} this resource: {_names(levels, _ORDER[:2])}")
            elif not owners and len(set(accounts)) > 0 and foreign:
                out.add("cross_account_unknown", Category.CROSS_ACCOUNT, Severity.MEDIUM, lab, "",
                        f"lets account(s) {', '.join(sorted(set(accounts)))} {kind} this resource, and the owning "
                        "account is not known here, so ps019 cannot tell whether that is another account: "
                        f"{_names(levels, _ORDER[:2])}", advisory=True)
        if services and levels and not _service_source_bounded(stmt):
            out.add("confused_deputy", Category.CONFUSED_DEPUTY, Severity.MEDIUM, lab, "",
                    f"lets the service principal(s) {', '.join(services)} act without an aws:SourceArn or "
                    "aws:SourceAccount condition (the confused-deputy problem: the service can be made to act for "
                    f"another account's resource): {_names(levels, _ORDER)}", advisory=True)
    return out.findings()
