"""Role trust policies: who may assume the role (docs/iam.md, "Trust policies").

Web-identity (OIDC) trust is judged per provider (knowledge.OIDC_PROVIDERS): the token's audience must be pinned,
its subject must name one repository or project, and a role that can write or administer must also pin a branch,
environment, stack, workspace or service account. The provider is recognised from the Federated principal, or, when
that ARN is still unknown at preview, from the condition keys (``token.actions.githubusercontent.com:sub``).
"""

from __future__ import annotations

from typing import Any

from ps019.iam import index as _ix
from ps019.iam import knowledge as K
from ps019.iam.analysis import (
    _FIX,
    Category,
    IamFinding,
    _Collector,
    _pattern_subtracted,
    _q,
    _Stmt,
    principal_bounding,
)
from ps019.model import Severity

_TR = Category.TRUST_EXPOSURE
UNKNOWN_ARN = "arn:aws:ps019:::unknown-until-update"


def _is_wildcard_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and any(_ix.has_wildcard(v) for v in principal.get("AWS", ()))


def _oidc_host(federated: str) -> str | None:
    lowered = federated.lower()
    if ":saml-provider/" in lowered:
        return None
    if ":oidc-provider/" in lowered:
        return lowered.split(":oidc-provider/", 1)[1]
    if lowered.startswith("arn:"):
        return None
    return lowered  # bare provider names: cognito-identity.amazonaws.com, accounts.google.com, ...


def provider_for(host: str) -> K.OidcProvider:
    for provider in K.OIDC_PROVIDERS:
        if provider.matches(host):
            return provider
    return K.GENERIC_OIDC


def _claim_hosts(stmt: _Stmt) -> list[str]:
    """Provider hosts named by the statement's condition keys (``<host>:sub``/``<host>:aud``), in order."""
    hosts: list[str] = []
    for _op, key, _values in stmt.conditions:
        host, sep, claim = key.rpartition(":")
        if sep and host and ("/" in host or "." in host):
            if host not in hosts and not host.startswith(("aws", "sts", "iam", "saml")):
                hosts.append(host)
    return hosts


def _federated_hosts(stmt: _Stmt) -> list[tuple[str, bool]]:
    """(host, seen) per OIDC provider the statement trusts. ``seen`` is False when the principal's ARN is not
    visible (unknown at preview) and the host came from the condition keys."""
    principal = stmt.principal if isinstance(stmt.principal, dict) else {}
    out: list[tuple[str, bool]] = []
    for federated in principal.get("Federated", ()):
        if federated == UNKNOWN_ARN or _ix.has_wildcard(federated):
            out.extend((h, False) for h in _claim_hosts(stmt) or ["an unknown OIDC provider"])
            continue
        host = _oidc_host(federated)
        if host is not None:
            out.append((host, True))
    web_identity = any(a in ("sts:assumerolewithwebidentity", "*", "sts:*") for a in stmt.actions or ())
    if not out and web_identity and not principal.get("Federated") and not principal.get("AWS") \
            and not principal.get("Service"):
        out.extend((h, False) for h in _claim_hosts(stmt))
    return out


def _conds(stmt: _Stmt, key: str) -> list[tuple[str, list[str]]]:
    return [(op, vals) for op, k, vals in stmt.conditions if k == key]


_OPERATORS = {o.lower(): o for o in (
    "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike",
    "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Null", "Bool")}


def _describe(op: str) -> str:
    """The operator as AWS spells it (conditions are kept in lower case)."""
    prefix = ""
    for lower, shown in (("forallvalues:", "ForAllValues:"), ("foranyvalue:", "ForAnyValue:")):
        if op.startswith(lower):
            prefix, op = shown, op[len(lower):]
    suffix = ""
    if op.endswith("ifexists"):
        suffix, op = "IfExists", op[: -len("ifexists")]
    return prefix + _OPERATORS.get(op, op) + suffix


def _judge_oidc(stmt: _Stmt, host: str, seen: bool, can_write: bool | None, out: _Collector) -> None:
    lab = (stmt.label,)
    provider = provider_for(host)
    who = f"OIDC provider {host}" + ("" if seen else " (its ARN is not known yet; judged by its condition keys)")
    fix = _FIX["oidc"].format(host=host, example=provider.example)
    # Single-valued claims with set operators: ForAllValues is true when the key is absent [CONDOPS].
    for claim in ("sub", "aud"):
        for op, vals in _conds(stmt, f"{host}:{claim}"):
            if op.startswith("forallvalues:"):
                out.add("oidc_forall", _TR, Severity.CRITICAL, lab, "",
                        f"trusts {who} with {_describe(op)} on the single-valued claim {host}:{claim} "
                        f"({', '.join(_q(v) for v in vals)}): ForAllValues is true when the claim is absent, so it "
                        "pins nothing", fix=_FIX["oidc_set_operator"].format(host=host, claim=claim))
            elif op.startswith("foranyvalue:"):
                out.add("oidc_foranyvalue", _TR, Severity.LOW, lab, "",
                        f"uses {_describe(op)} on the single-valued claim {host}:{claim}: AWS documents set "
                        "operators for multivalued keys only", fix=_FIX["oidc_set_operator"].format(host=host,
                                                                                                  claim=claim),
                        advisory=True)
    if provider.name == "cognito":
        auds = [vals for op, vals in _conds(stmt, f"{host}:aud") if _positive_single(op)]
        if not any(_literal_values(v) for v in auds):
            out.add("oidc", _TR, Severity.CRITICAL, lab, "",
                    f"trusts {who} without an exact {host}:aud (identity pool) condition", fix=fix)
        return
    # aud
    auds = [vals for op, vals in _conds(stmt, f"{host}:aud") if _positive_single(op)]
    if not auds:
        present = _conds(stmt, f"{host}:aud")
        why = (f"whose {host}:aud condition uses {', '.join(_describe(op) for op, _ in present)}, which does not "
               "pin the audience" if present else f"without a {host}:aud condition")
        out.add("oidc_aud", _TR, Severity.HIGH, lab, "",
                f"trusts {who} {why} (a token minted for another audience is accepted)", fix=fix)
    # sub
    subs_all = _conds(stmt, f"{host}:sub")
    subs = [vals for op, vals in subs_all if _positive_single(op)]
    if not subs:
        if subs_all and all(op.startswith("forallvalues:") for op, _ in subs_all):
            return  # reported above: ForAllValues pins nothing
        if subs_all:
            ops = ", ".join(f"{_describe(op)} ({', '.join(_q(v) for v in vals)})" for op, vals in subs_all)
            why = f"whose {host}:sub condition uses {ops}, which does not limit the subject"
        else:
            why = f"without a {host}:sub condition"
        out.add("oidc", _TR, Severity.CRITICAL, lab, "",
                f"trusts {who} {why}: any {provider.subject_noun} the provider issues tokens for can assume the role",
                fix=fix)
        return
    values = [v for vals in subs for v in vals]
    # Several positive sub conditions must all hold: the narrowest one decides. One list: every value must pin.
    pinned_scope = any(all(provider.scope_pinned(v) for v in vals) for vals in subs)
    if not pinned_scope:
        out.add("oidc", _TR, Severity.CRITICAL, lab, "",
                f"trusts {who} with {host}:sub not limited to one {provider.scope_noun} "
                f"({', '.join(_q(v) for v in values)})", fix=fix)
        return
    pinned_env = any(all(provider.environment_pinned(v) for v in vals) for vals in subs)
    if pinned_env:
        return
    shown = ", ".join(_q(v) for v in values)
    if can_write:
        out.add("oidc_pin", _TR, Severity.HIGH, lab, "",
                f"lets every {provider.pin_noun} of the {provider.scope_noun} assume a role that can write or "
                f"administer ({host}:sub {shown}); pin a {provider.pin_noun}", fix=fix)
    elif can_write is None:
        out.add("oidc_pin", _TR, Severity.MEDIUM, lab, "",
                f"lets every {provider.pin_noun} of the {provider.scope_noun} assume the role ({host}:sub {shown}); "
                f"if the role can write, pin a {provider.pin_noun} (its permissions are not all visible here)",
                fix=fix, advisory=True)


def _positive_single(op: str) -> bool:
    """A positive operator for a single-valued claim (ForAnyValue: behaves as the plain operator when present)."""
    if op.startswith("foranyvalue:"):
        op = op[len("foranyvalue:"):]
    return op in K.POSITIVE_OPERATORS


def _literal_values(values: list[str]) -> bool:
    return bool(values) and all(v and not _ix.has_wildcard(v) for v in values)


def analyze_trust(statements: list[_Stmt], can_write: bool | None = None) -> list[IamFinding]:
    out = _Collector()
    wildcard_denies = [
        s for s in statements
        if s.effect == "Deny" and s.unconditional and s.principal is not None and _is_wildcard_principal(s.principal)
    ]
    for stmt in statements:
        if stmt.effect != "Allow":
            continue
        lab = (stmt.label,)
        actions = stmt.actions if stmt.actions is not None else ["*"]
        if wildcard_denies and all(_pattern_subtracted(wildcard_denies, a, ["*"]) for a in actions):
            continue
        if stmt.not_principal is not None:
            out.add("trust_notprincipal", _TR, Severity.HIGH, lab, "",
                    "Allow with NotPrincipal trusts every principal except the ones listed")
            continue
        if _is_wildcard_principal(stmt.principal):
            if not principal_bounding(stmt):
                out.add("trust_star", _TR, Severity.CRITICAL, lab, "",
                        'trusts any AWS principal ("*") without an aws:PrincipalOrgID, aws:PrincipalAccount or '
                        "aws:PrincipalArn condition that pins the caller's organisation or account")
            continue
        for host, seen in _federated_hosts(stmt):
            if host == "an unknown OIDC provider":
                out.add("oidc", _TR, Severity.CRITICAL, lab, "",
                        "trusts a federated principal that is unknown here and has no <provider>:sub condition to "
                        "judge it by", fix=_FIX["oidc"].format(host="<provider>", example="repo:my-org/my-repo:..."))
                continue
            _judge_oidc(stmt, host, seen, can_write, out)
    return out.findings()

