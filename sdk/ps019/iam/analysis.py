"""The IAM verdict rule (docs/iam.md): parse a policy document, compute its effective grants (unconditional Deny
statements subtracted, conditional Deny not), and judge them. Pure: no I/O once the action index is loaded.

Never expands ``*`` or ``NotAction`` into all actions: whole-service and all-action grants are judged as patterns.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from ps019.iam import index as _ix
from ps019.iam import knowledge as K
from ps019.iam._data_version import IAM_DATA_VERSION
from ps019.iam._sets import EVERYTHING, PatternSet, subtract_denies
from ps019.model import Severity

Verdict = Literal["allow", "deny", "error"]
Kind = Literal["identity", "trust", "resource"]
KINDS = ("identity", "trust", "resource")

# No policy a customer writes may exceed 20,480 characters (S3 bucket policies; KMS key policies 32 kB), and the
# largest AWS managed policy (ReadOnlyAccess) is ~91 kB as compact JSON; anything larger
# cannot be a policy AWS would store, and is refused before parsing so that cost stays bounded.
MAX_DOCUMENT_CHARS = 131_072


class Category(str, enum.Enum):
    FULL_ADMIN = "full-admin"
    SERVICE_WILDCARD = "service-wildcard"
    PRIVILEGE_ESCALATION = "privilege-escalation"
    RESOURCE_EXPOSURE = "resource-exposure"  # permissions management
    DATA_EXFILTRATION = "data-exfiltration"
    CREDENTIALS_EXPOSURE = "credentials-exposure"
    INFRASTRUCTURE_MODIFICATION = "infrastructure-modification"
    TRUST_EXPOSURE = "trust-exposure"
    PUBLIC_ACCESS = "public-access"  # resource policies: anyone may call
    CROSS_ACCOUNT = "cross-account"  # resource policies: writes or policy changes beyond the owning account
    CONFUSED_DEPUTY = "confused-deputy"  # resource policies: a service principal without a source condition
    UNVERIFIABLE = "unverifiable"  # an action or service the pinned data does not know


@dataclass(frozen=True)
class IamFinding:
    category: Category
    severity: Severity
    message: str
    statements: tuple[str | int, ...]  # Sid, or the statement's 0-based index when it has none
    actions: tuple[str, ...]
    fix: str
    advisory: bool = False  # reported, but not a reason to deny (e.g. a confused-deputy risk, a set operator)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "category": self.category.value,
            "severity": self.severity.value,
            "message": self.message,
            "statements": list(self.statements),
            "actions": list(self.actions),
            "fix": self.fix,
        }
        if self.advisory:
            out["advisory"] = True
        return out


@dataclass(frozen=True)
class IamResult:
    verdict: Verdict
    findings: list[IamFinding] = field(default_factory=list)
    message: str = ""  # the precise error when verdict == "error"
    kind: Kind = "identity"

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"

    @property
    def severity(self) -> Severity | None:
        """The highest severity of the findings that deny (None when there are none)."""
        return max((f.severity for f in self.findings if not f.advisory), key=lambda s: s.rank, default=None)

    @property
    def denying(self) -> list[IamFinding]:
        return [f for f in self.findings if not f.advisory]

    @property
    def advisories(self) -> list[IamFinding]:
        return [f for f in self.findings if f.advisory]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "verdict": self.verdict, "findings": [f.to_dict() for f in self.findings]}
        if self.verdict == "error":
            out["message"] = self.message
        return out


def is_admin_equivalent_managed_policy(arn: str) -> bool:
    """True for AWS managed policies that grant (or let the holder grant itself) administrator access, in any
    partition (``arn:aws:``, ``arn:aws-us-gov:``, ``arn:aws-cn:``)."""
    if not isinstance(arn, str):
        return False
    m = _MANAGED_ARN.fullmatch(arn.strip())
    return bool(m) and m.group(1).lower() in _ADMIN_NAMES_LOWER


_MANAGED_ARN = re.compile(r"arn:aws(?:-[a-z-]+)?:iam::aws:policy/(?:[^*?]*/)?([^/*?]+)", re.IGNORECASE)
_ADMIN_NAMES_LOWER = frozenset(n.lower() for n in K.ADMIN_EQUIVALENT_POLICY_NAMES)


# --------------------------------------------------------------------------------------------------------------
# Parsing and grammar
# --------------------------------------------------------------------------------------------------------------


class _GrammarError(Exception):
    pass


@dataclass
class _Stmt:
    index: int
    label: str | int
    effect: str
    actions: list[str] | None  # lower case; None when NotAction is used
    not_actions: list[str] | None
    resources: list[str] | None
    not_resources: list[str] | None
    principal: Any = None
    not_principal: Any = None
    conditions: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (operator, key, values), lower op/key

    @property
    def unconditional(self) -> bool:
        return not self.conditions


def _q(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


_ACTION_RX = re.compile(r"[A-Za-z0-9*?_.-]+:[A-Za-z0-9*?_.-]+")


def _strings(where: str, name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        if not value:
            raise _GrammarError(f'{where}: "{name}" is an empty list')
        for item in value:
            if not isinstance(item, str):
                raise _GrammarError(f'{where}: "{name}" entries must be strings, got {_type_name(item)} {_q(item)}')
        return list(value)
    raise _GrammarError(f'{where}: "{name}" must be a string or a list of strings, got {_type_name(value)}')


def _parse_actions(where: str, name: str, value: Any) -> list[str]:
    out = []
    for action in _strings(where, name, value):
        action = action.strip()
        if action and set(action) == {"*"}:
            out.append("*")
        elif _ACTION_RX.fullmatch(action):
            out.append(action.lower())
        else:
            raise _GrammarError(f'{where}: "{name}" value {_q(action)} is not "service:action" or "*"')
    return out


def _parse_resources(where: str, name: str, value: Any) -> list[str]:
    out = []
    for res in _strings(where, name, value):
        if not (res == "*" or res.startswith("arn:") or set(res) <= {"*", "?"} and res):
            raise _GrammarError(f'{where}: "{name}" value {_q(res)} must be an ARN or "*"')
        out.append(res)
    return out


def _parse_principal(where: str, name: str, value: Any) -> Any:
    if value == "*":
        return "*"
    if not isinstance(value, dict) or not value:
        raise _GrammarError(f'{where}: "{name}" must be "*" or an object with AWS/Service/Federated/CanonicalUser')
    out = {}
    for ptype, ids in value.items():
        if ptype not in K.PRINCIPAL_TYPES:
            raise _GrammarError(
                f'{where}: "{name}" has unknown principal type {_q(ptype)} (expected AWS, Service, Federated or '
                "CanonicalUser; names are case-sensitive)"
            )
        out[ptype] = _strings(where, f"{name}.{ptype}", ids)
    return out


def _parse_condition(where: str, value: Any) -> list[tuple[str, str, list[str]]]:
    if not isinstance(value, dict):
        raise _GrammarError(f'{where}: "Condition" must be an object, got {_type_name(value)}')
    out = []
    for op, block in value.items():
        if not isinstance(block, dict):
            raise _GrammarError(f'{where}: "Condition.{op}" must be an object of condition keys, got {_type_name(block)}')
        for key, raw in block.items():
            values = raw if isinstance(raw, list) else [raw]
            plain = []
            for v in values:
                if isinstance(v, bool):
                    plain.append("true" if v else "false")
                elif isinstance(v, (str, int, float)):
                    plain.append(str(v))
                else:
                    raise _GrammarError(
                        f'{where}: "Condition.{op}.{key}" values must be strings, numbers or booleans, '
                        f"got {_type_name(v)}"
                    )
            out.append((str(op).lower(), str(key).lower(), plain))
    return out


def _parse(doc: Any, kind: Kind) -> list[_Stmt]:
    if not isinstance(doc, dict):
        raise _GrammarError(f"policy document must be a JSON object, got {_type_name(doc)}")
    for key in doc:
        if key not in K.TOP_LEVEL_ELEMENTS:
            raise _GrammarError(
                f"unknown top-level element {_q(key)} (expected Version, Id, Statement; names are case-sensitive)"
            )
    if "Version" in doc and doc["Version"] not in K.POLICY_VERSIONS:
        raise _GrammarError(f'"Version" must be "2012-10-17" or "2008-10-17", got {_q(doc["Version"])}')
    if "Statement" not in doc:
        raise _GrammarError('missing "Statement"')
    raw_statements = doc["Statement"]
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise _GrammarError(f'"Statement" must be an object or a list of objects, got {_type_name(raw_statements)}')
    if not raw_statements:
        raise _GrammarError('"Statement" is empty')
    statements = []
    for i, raw in enumerate(raw_statements):
        where = f"Statement[{i}]"
        if not isinstance(raw, dict):
            raise _GrammarError(f"{where}: must be an object, got {_type_name(raw)}")
        for key in raw:
            if key not in K.STATEMENT_ELEMENTS:
                raise _GrammarError(
                    f"{where}: unknown element {_q(key)} (expected Sid, Effect, Principal, NotPrincipal, Action, "
                    "NotAction, Resource, NotResource, Condition; names are case-sensitive)"
                )
        sid = raw.get("Sid")
        if sid is not None and not isinstance(sid, str):
            raise _GrammarError(f'{where}: "Sid" must be a string, got {_type_name(sid)}')
        if "Effect" not in raw:
            raise _GrammarError(f'{where}: missing "Effect"')
        effect = raw["Effect"]
        if effect not in ("Allow", "Deny"):
            raise _GrammarError(f'{where}: "Effect" must be "Allow" or "Deny", got {_q(effect)}')
        if "Action" in raw and "NotAction" in raw:
            raise _GrammarError(f'{where}: has both "Action" and "NotAction"')
        if "Action" not in raw and "NotAction" not in raw:
            raise _GrammarError(f'{where}: needs "Action" or "NotAction"')
        if "Resource" in raw and "NotResource" in raw:
            raise _GrammarError(f'{where}: has both "Resource" and "NotResource"')
        if "Principal" in raw and "NotPrincipal" in raw:
            raise _GrammarError(f'{where}: has both "Principal" and "NotPrincipal"')
        if kind == "identity":
            if "Resource" not in raw and "NotResource" not in raw:
                raise _GrammarError(f'{where}: identity policy statement needs "Resource" or "NotResource"')
            for pkey in ("Principal", "NotPrincipal"):
                if pkey in raw:
                    raise _GrammarError(f'{where}: "{pkey}" is not allowed in an identity policy (is this a trust '
                                        "or resource policy? use --kind trust)")
        elif "Principal" not in raw and "NotPrincipal" not in raw:
            raise _GrammarError(f'{where}: {kind} policy statement needs "Principal" or "NotPrincipal"')
        statements.append(
            _Stmt(
                index=i,
                label=sid if sid else i,
                effect=effect,
                actions=_parse_actions(where, "Action", raw["Action"]) if "Action" in raw else None,
                not_actions=_parse_actions(where, "NotAction", raw["NotAction"]) if "NotAction" in raw else None,
                resources=_parse_resources(where, "Resource", raw["Resource"]) if "Resource" in raw else None,
                not_resources=(
                    _parse_resources(where, "NotResource", raw["NotResource"]) if "NotResource" in raw else None
                ),
                principal=_parse_principal(where, "Principal", raw["Principal"]) if "Principal" in raw else None,
                not_principal=(
                    _parse_principal(where, "NotPrincipal", raw["NotPrincipal"]) if "NotPrincipal" in raw else None
                ),
                conditions=_parse_condition(where, raw["Condition"]) if "Condition" in raw else [],
            )
        )
    return statements


# --------------------------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------------------------


def _positive(op: str) -> bool:
    """True when the operator restricts the request whenever the statement applies."""
    if op.endswith("ifexists") or op.startswith("forallvalues:"):
        return False
    if op.startswith("foranyvalue:"):
        op = op[len("foranyvalue:"):]
    return op in K.POSITIVE_OPERATORS


def _literal(values: list[str]) -> bool:
    return bool(values) and all(v and not _ix.has_wildcard(v) for v in values)


def _bounding_families(stmt: _Stmt) -> frozenset[str]:
    """The bounding-key families present in ``stmt`` with a positive operator and literal values."""
    if not stmt.conditions:
        return frozenset()
    found = set()
    for op, key, values in stmt.conditions:
        if not _positive(op) or not _literal(values):
            continue
        if key.startswith(K.RESOURCE_TAG_PREFIXES) or _SERVICE_RESOURCE_TAG.match(key):
            found.add("resource_tag")
            continue
        family = K.BOUNDING_KEY_FAMILIES.get(key)
        if family == "policy_arn" and any(is_admin_equivalent_managed_policy(v) for v in values):
            continue  # "you may attach AdministratorAccess" bounds nothing
        if family:
            found.add(family)
    return frozenset(found)


_SERVICE_RESOURCE_TAG = re.compile(r"[a-z0-9-]+:resourcetag/")  # ec2:ResourceTag/..., the service-specific ABAC keys


def _bounded(families: frozenset[str], rule: str, action: str = "") -> bool:
    allowed = K.BOUNDS_FOR_RULE[rule]
    for fam in families:
        if fam in allowed:
            if fam == "via_service" and not action.startswith("kms:"):
                continue
            if fam in ("permissions_boundary", "policy_arn") and not action.startswith("iam:"):
                continue
            return True
    return False


# --------------------------------------------------------------------------------------------------------------
# Resources and Deny subtraction
# --------------------------------------------------------------------------------------------------------------

_WILD_CHARS = frozenset("*?/:")


@lru_cache(maxsize=8192)
def _unscoped(resource: str, service_prefix: str) -> bool:
    """``*``, ``arn:aws:iam::*:role/*`` or ``arn:aws:s3:::*`` name every resource of a type; ``role/app-*`` and
    ``arn:aws:s3:::my-bucket/*`` are scoped (a prefix or a named parent)."""
    if not resource or set(resource) <= _WILD_CHARS:
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return _ix.has_wildcard(resource)
    svc_part, rest = parts[2], parts[5]
    if not rest or set(rest) <= _WILD_CHARS:
        return True
    svc = _ix.service(svc_part.lower() if not _ix.has_wildcard(svc_part) else service_prefix)
    if svc is not None:
        lowered = rest.lower()
        for token in svc.type_tokens:
            if lowered.startswith(token) and set(rest[len(token):]) <= _WILD_CHARS:
                return True
    return False


def _deny_covers_resource(deny: _Stmt, resource: str) -> bool:
    if deny.resources is not None:
        return any(p == "*" or _ix.glob_regex(p).fullmatch(resource) is not None for p in deny.resources)
    if deny.not_resources is not None:
        return resource != "*" and not any(_ix.glob_match(p, resource) for p in deny.not_resources)
    return True  # trust-policy Deny without Resource applies to the role itself


# --------------------------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------------------------

_FIX = {
    "full_admin": 'Replace "*" with the specific actions the workload calls (generate them from CloudTrail or '
    "IAM Access Analyzer policy generation) and scope Resource to the ARNs it touches.",
    "service_wildcard": 'List the actions of this service the workload needs instead of "{svc}:*"; a service '
    "wildcard always includes its permissions-management and destructive actions.",
    "not_action": 'Use an explicit "Action" allow-list; "NotAction" with Allow grants every other action, '
    "including ones AWS adds later.",
    "not_resource": 'Use "Resource" with the ARNs needed; "NotResource" with Allow grants every other resource.',
    "pass_role": 'Scope iam:PassRole to the role ARNs this workload must pass (e.g. '
    '"arn:aws:iam::123456789012:role/app-*"); iam:PassedToService alone does not limit which role.',
    "attach_admin": 'Add a Condition "ArnEquals": {"iam:PolicyARN": [<the managed policies allowed>]} (not '
    "AdministratorAccess) or force a permissions boundary with iam:PermissionsBoundary.",
    "principal_creation": 'Scope Resource to a name prefix (e.g. "arn:aws:iam::123456789012:role/app-*") and add '
    'Condition "StringEquals": {"iam:PermissionsBoundary": "<boundary policy ARN>"}.',
    "escalation": "Scope these actions to named ARNs, or bound them with an aws:ResourceTag ABAC condition or a "
    "forced iam:PermissionsBoundary.",
    "assume_role": 'Scope sts:AssumeRole to the role ARNs this workload assumes instead of "*".',
    "execution": "Scope these actions to the functions, state machines, projects, task definitions or instances this "
    'workload starts (e.g. "arn:aws:lambda:us-east-1:123456789012:function:app-*"), or bound them with an '
    '"aws:ResourceTag/<key>" condition.',
    "data": 'Scope the read to the buckets/secrets/keys needed, or bound it (kms:ViaService for kms:Decrypt, '
    "aws:ResourceTag for ABAC).",
    "credentials": "Scope these credential-issuing actions to named ARNs.",
    "perm_mgmt": 'Scope permissions-management actions to the named resources whose policies this workload owns, '
    "or bound them with an aws:ResourceTag condition.",
    "write": 'Scope writes to named ARNs or prefixes, or bound destructive actions with an "aws:ResourceTag/<key>" '
    "condition.",
    "trust_star": 'Name the trusted principals (account, role or service), or pin the caller with an exact '
    '"aws:PrincipalOrgID" or "aws:PrincipalArn" condition; sts:ExternalId alone is not enough.',
    "trust_notprincipal": 'Replace "NotPrincipal" with "Principal" naming who may assume the role.',
    "oidc": 'Add Condition "StringEquals" on "{host}:aud" (the audience the role expects) and "StringEquals" (or '
    '"StringLike") on "{host}:sub" pinned to one repository or project and, for a role that can write, one branch '
    'or environment, e.g. "{example}".',
    "oidc_set_operator": 'Use "StringEquals"/"StringLike" (no ForAllValues:/ForAnyValue: prefix) on "{host}:{claim}": '
    "it is a single-valued claim.",
    "unknown_action": "Check the spelling of the action (service prefix and name); if AWS added it recently, upgrade "
    "ps019 so that its IAM data knows it.",
    "public": "Name the principals (accounts, roles, services) instead of \"*\", or bound the statement with "
    "aws:PrincipalOrgID, aws:SourceArn/aws:SourceAccount, aws:SourceVpce or a narrow aws:SourceIp range.",
    "cross_account": "Grant other accounts only reads, or bound the statement with aws:PrincipalOrgID; list accounts "
    "your organisation owns in the control's trustedAccountIds.",
    "cross_account_unknown": "Set the control's ownerAccountIds (or trustedAccountIds) so ps019 can tell the owning "
    "account from others, or bound the statement with aws:PrincipalOrgID.",
    "confused_deputy": 'Add "aws:SourceArn" (the resource that calls) or "aws:SourceAccount" (your account) to the '
    "statement so that the service acts only on your resources' behalf.",
}


class _Collector:
    """Groups per-action hits into one finding per (rule, category, statements)."""

    def __init__(self) -> None:
        self._groups: dict[tuple, list[str]] = {}
        self._meta: dict[tuple, tuple[Category, Severity, str, str]] = {}
        self.reported: set[str] = set()

    def add(self, rule: str, category: Category, severity: Severity, statements: tuple, action: str, headline: str,
            fix: str | None = None, advisory: bool = False) -> None:
        key = (rule, category, statements, headline, advisory)
        acts = self._groups.setdefault(key, [])
        if action and action not in acts:
            acts.append(action)
        self._meta[key] = (category, severity, headline, fix if fix is not None else _FIX[rule])
        if action:
            self.reported.add(action.lower())

    def findings(self) -> list[IamFinding]:
        out = []
        for key, actions in self._groups.items():
            category, severity, headline, fix = self._meta[key]
            statements = key[2]
            shown = ", ".join(actions[:6]) + (f" and {len(actions) - 6} more" if len(actions) > 6 else "")
            names = [_q(s) if isinstance(s, str) else f"[{s}]" for s in statements]
            where = ("Statement" if len(names) == 1 else "Statements ") + ", ".join(
                (" " + n if n.startswith('"') and len(names) == 1 else n) for n in names)
            message = f"{where}: {headline}" + (f": {shown}" if shown else "")
            out.append(IamFinding(category, severity, message, statements, tuple(actions), fix, advisory=key[4]))
        out.sort(key=lambda f: (f.advisory, -f.severity.rank, f.category.value, str(f.statements)))
        return out


# --------------------------------------------------------------------------------------------------------------
# Identity policies
# --------------------------------------------------------------------------------------------------------------

_CRITICAL_SERVICES = frozenset({"iam", "sts", "organizations", "kms"})


def _all_actions(pattern: str) -> str:
    return "*" if set(pattern) <= {"*", ":"} else pattern  # "*:*" is "*"


def action_set(stmt: _Stmt) -> PatternSet:
    if stmt.not_actions is not None:
        return PatternSet.of(map(_all_actions, stmt.not_actions), comp=True)
    return PatternSet.of(map(_all_actions, stmt.actions or ()))


def resource_set(stmt: _Stmt) -> PatternSet:
    if stmt.not_resources is not None:
        return PatternSet.of(stmt.not_resources, comp=True)
    if stmt.resources is None:
        return EVERYTHING  # trust/resource statements without Resource apply to the resource itself
    return PatternSet.of(stmt.resources)


def _everyone(principal: Any) -> bool:
    """None (identity policies) or a principal that names everyone: a Deny that applies to every caller."""
    if principal is None or principal == "*":
        return True
    return isinstance(principal, dict) and set(principal) == {"AWS"} and "*" in principal["AWS"]


def unconditional_denies(statements: list[_Stmt]) -> list[tuple[PatternSet, PatternSet]]:
    """The (actions, resources) of every Deny that applies to every caller and request."""
    return [(action_set(d), resource_set(d)) for d in statements
            if d.effect == "Deny" and d.unconditional and d.not_principal is None and _everyone(d.principal)]


def effective_pieces(stmt: _Stmt, statements: list[_Stmt],
                     denies: list[tuple[PatternSet, PatternSet]] | None = None) -> list[tuple[PatternSet, PatternSet]]:
    """What an Allow statement still grants after every unconditional Deny of the document: (actions, resources)
    pieces (docs/iam.md, "Effective grants"). Conditional Denies subtract nothing (they may not apply)."""
    if denies is None:
        denies = unconditional_denies(statements)
    return subtract_denies(action_set(stmt), resource_set(stmt), denies)


def _analyze_identity(statements: list[_Stmt]) -> list[IamFinding]:
    out = _Collector()
    escalation_hits: dict[str, set] = {}
    denies = unconditional_denies(statements)
    for stmt in statements:
        if stmt.effect != "Allow":
            continue
        families = _bounding_families(stmt)
        for actions, resources in effective_pieces(stmt, statements, denies):
            _judge_piece(stmt, actions, resources, families, out, escalation_hits)
    # Escalation combinations are judged across all statements of the document.
    for combo in K.ESCALATION_COMBINATIONS:
        if all(a in escalation_hits for a in combo):
            if len(combo) == 1 and next(iter(combo)) in out.reported:
                continue
            labels = tuple(sorted({lab for a in combo for lab in escalation_hits[a]}, key=str))
            names = tuple(sorted(_canonical(a) for a in combo))
            headline = ("grants a privilege-escalation action on unscoped resources" if len(combo) == 1
                        else "together grant a privilege-escalation combination")
            for name in names:
                out.add("escalation", Category.PRIVILEGE_ESCALATION, Severity.CRITICAL, labels, name, headline)
    return out.findings()


def _judge_piece(stmt: _Stmt, actions: PatternSet, resources: PatternSet, families: frozenset[str],
                 out: _Collector, escalation_hits: dict[str, set]) -> None:
    lab = (stmt.label,)
    listed = list(resources.patterns) if not resources.comp else ["*"]
    if resources.comp and stmt.not_resources is not None:
        out.add("not_resource", Category.RESOURCE_EXPOSURE, Severity.HIGH, lab, "",
                "Allow with NotResource grants its actions on every resource except " +
                ", ".join(stmt.not_resources))
    if actions.comp:
        if stmt.not_actions is not None:
            out.add("not_action", Category.FULL_ADMIN, Severity.CRITICAL, lab, "",
                    "Allow with NotAction grants every action except " + ", ".join(actions.patterns))
        else:
            except_ = f" except {', '.join(actions.patterns)}" if actions.patterns else ""
            out.add("full_admin", Category.FULL_ADMIN, Severity.CRITICAL, lab, "",
                    'Allow "Action": "*" grants every action of every service' + except_ +
                    ("" if all(_unscoped(r, "") for r in listed) else " on the listed resources"))
        return
    for pattern in actions.patterns:
        _judge_pattern(pattern, stmt, listed, families, out, escalation_hits)


def _canonical(action_lower: str) -> str:
    hit = _ix.lookup(action_lower)
    return hit[0] if hit else action_lower


def _pattern_subtracted(denies: list[_Stmt], pattern: str, resources: list[str]) -> bool:
    """An Allow pattern is wholly removed when an unconditional Deny with an Action pattern covering it (as a
    pattern: Deny ``s3:*`` covers Allow ``s3:*``) applies to all of the Allow's resources."""
    for d in denies:
        if d.actions is None:
            continue
        if any(p == "*" or _ix.glob_regex(p).fullmatch(pattern) for p in d.actions):
            if all(_deny_covers_resource(d, r) for r in resources):
                return True
    return False


def _judge_pattern(pattern: str, stmt: _Stmt, resources: list[str], families: frozenset[str], out: _Collector,
                   escalation_hits: dict[str, set]) -> None:
    lab = (stmt.label,)
    svc_pat, _, act_pat = pattern.partition(":")
    if set(act_pat) == {"*"}:
        if not _ix.has_wildcard(svc_pat) and _ix.service(svc_pat) is None:
            _unknown(out, lab, pattern, f"unknown service prefix {svc_pat!r}")
            return
        severity = Severity.CRITICAL if svc_pat in _CRITICAL_SERVICES or _ix.has_wildcard(svc_pat) else Severity.HIGH
        out.add("service_wildcard", Category.SERVICE_WILDCARD, severity, lab, f"{svc_pat}:*",
                "grants a whole-service wildcard", fix=_FIX["service_wildcard"].format(svc=svc_pat))
        return
    if not _relevant_actions(pattern) and not _known(pattern):
        svc = _ix.service(svc_pat) if not _ix.has_wildcard(svc_pat) else True
        _unknown(out, lab, pattern, "unknown service prefix " + repr(svc_pat) if svc is None else "unknown action")
        return
    for lower, canonical, code in _relevant_actions(pattern):
        prefix = lower.partition(":")[0]
        unscoped = any(_unscoped(r, prefix) for r in resources)
        _judge_action(lower, canonical, code, unscoped, stmt, families, out, escalation_hits)


def _known(pattern: str) -> bool:
    """The action (or some action the pattern matches) is in the pinned action index."""
    if _ix.has_wildcard(pattern):
        return bool(_ix.expand(pattern))
    return _ix.lookup(pattern) is not None


def _unknown(out: _Collector, lab: tuple, pattern: str, why: str) -> None:
    out.add("unknown_action", Category.UNVERIFIABLE, Severity.MEDIUM, lab, _canonical(pattern),
            f"cannot be verified: {why} (not in the pinned IAM data {IAM_DATA_VERSION})")


@lru_cache(maxsize=8192)
def _relevant_actions(pattern: str) -> tuple[tuple[str, str, str], ...]:
    """The actions matching ``pattern`` that some rule could report. Reads, lists, tagging, non-destructive writes
    and ``*``-only actions never produce a finding on their own, so ``ec2:Describe*`` (~200 actions) costs nothing
    after the first call."""
    if _ix.has_wildcard(pattern):
        matches = _ix.expand(pattern)
    else:
        hit = _ix.lookup(pattern)
        # An action the index does not know is still judged by the hand-written lists (escalation, data reads).
        matches = ((pattern, hit[0], hit[1]),) if hit else ((pattern, pattern, ""),)
    return tuple(m for m in matches if _could_report(m[0], m[2]))


def _could_report(a: str, code: str) -> bool:
    if a in _SPECIAL_ACTIONS or a.startswith("iam:attach"):
        return True
    if not code or "*" in code:
        return False
    level = code[0]
    return level == "P" or "c" in code or (
        level == "W" and a.partition(":")[2].startswith(K.DESTRUCTIVE_VERB_PREFIXES))


def _judge_action(a: str, name: str, code: str, unscoped: bool, stmt: _Stmt, families: frozenset[str],
                  out: _Collector, escalation_hits: dict[str, set]) -> None:
    lab = (stmt.label,)
    P = Category.PRIVILEGE_ESCALATION
    if a == K.PASS_ROLE:
        if unscoped and not _bounded(families, "pass_role", a):
            out.add("pass_role", P, Severity.HIGH, lab, name, "can pass every role to a service")
            escalation_hits.setdefault(a, set()).add(stmt.label)
        return
    if a.startswith("iam:attach") and ("p" in code or a.endswith("policy")):
        if not _bounded(families, "attach_admin", a):
            out.add("attach_admin", P, Severity.CRITICAL, lab, name,
                    "can attach AdministratorAccess (or another admin-equivalent managed policy)")
        return
    if a in K.PRINCIPAL_CREATION_ACTIONS:
        if unscoped or "permissions_boundary" not in families:
            out.add("principal_creation", P, Severity.HIGH, lab, name,
                    "creates IAM principals without a name prefix and a forced iam:PermissionsBoundary")
        return
    if a == K.ASSUME_ROLE:
        if unscoped and not _bounded(families, "assume_role", a):
            out.add("assume_role", P, Severity.HIGH, lab, name, "can assume any role")
        return
    if unscoped and a in _ESCALATION_ACTIONS and not _bounded(families, "escalation", a):
        escalation_hits.setdefault(a, set()).add(stmt.label)
    if not unscoped or "*" in code:
        return  # scoped, or the action supports only "*" (nothing narrower can be written)
    if a in K.EXECUTION_ACTIONS:
        if not _bounded(families, "execution", a):
            out.add("execution", P, Severity.HIGH, lab, name,
                    "runs existing code or commands with their own roles' permissions on every resource")
        return
    if a in K.DATA_READ_ACTIONS:
        if not _bounded(families, "generic", a):
            category = Category.DATA_EXFILTRATION
            out.add("data", category, Severity.HIGH, lab, name, "reads data or secrets on every resource")
        return
    if a in _SINGLE_ESCALATIONS:
        return  # reported as privilege escalation once all statements are seen
    if _bounded(families, "generic", a):
        return
    if "c" in code:
        out.add("credentials", Category.CREDENTIALS_EXPOSURE, Severity.HIGH, lab, name,
                "issues or exposes credentials on every resource")
    elif code[:1] == "P":
        out.add("perm_mgmt", Category.RESOURCE_EXPOSURE, Severity.HIGH, lab, name,
                "grants permissions-management actions on every resource")
    elif code[:1] == "W" and a.partition(":")[2].startswith(K.DESTRUCTIVE_VERB_PREFIXES):
        out.add("write", Category.INFRASTRUCTURE_MODIFICATION, Severity.MEDIUM, lab, name,
                "grants destructive write actions on every resource")


_ESCALATION_ACTIONS = frozenset(a for combo in K.ESCALATION_COMBINATIONS for a in combo)
_SINGLE_ESCALATIONS = frozenset(next(iter(c)) for c in K.ESCALATION_COMBINATIONS if len(c) == 1)
_SPECIAL_ACTIONS = (_ESCALATION_ACTIONS | K.DATA_READ_ACTIONS | K.PRINCIPAL_CREATION_ACTIONS | K.EXECUTION_ACTIONS
                    | {K.PASS_ROLE, K.ASSUME_ROLE})


# --------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------


def load_document(document: Any, kind: str = "identity") -> tuple[Any, IamResult | None]:
    """Decode ``document`` (JSON text, bytes or an already-parsed object); (object, None) or (None, error result)."""
    if isinstance(document, (bytes, bytearray)):
        try:
            document = document.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, IamResult("error", message=f"document is not UTF-8: {exc.reason} at byte {exc.start}",
                                   kind=kind)
    if isinstance(document, str):
        if len(document) > MAX_DOCUMENT_CHARS:
            return None, IamResult("error", kind=kind, message=(
                f"cannot be verified: the document is {len(document):,} characters, more than any AWS policy can "
                f"hold (ps019 reads at most {MAX_DOCUMENT_CHARS:,})"))
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            return None, IamResult("error", kind=kind,
                                   message=f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        except RecursionError:
            return None, IamResult("error", message="invalid JSON: nested too deeply", kind=kind)
    elif isinstance(document, dict):
        try:
            size = len(json.dumps(document, separators=(",", ":"), default=str))
        except (TypeError, ValueError, RecursionError):
            return None, IamResult("error", message="policy document is not plain JSON", kind=kind)
        if size > MAX_DOCUMENT_CHARS:
            return None, IamResult("error", kind=kind, message=(
                f"cannot be verified: the document is {size:,} characters as JSON, more than any AWS policy can "
                f"hold (ps019 reads at most {MAX_DOCUMENT_CHARS:,})"))
    return document, None


def parse_statements(document: Any, kind: str) -> list[_Stmt]:
    """The statements of a decoded document; raises PolicyGrammarError naming the statement and problem."""
    return _parse(document, kind)  # type: ignore[arg-type]


PolicyGrammarError = _GrammarError


def analyze_policy(document: str | bytes | dict, kind: Kind = "identity", *, can_write: bool | None = None,
                   owner_accounts: Any = (), service: str | None = None) -> IamResult:
    """Judge one IAM policy document. Never raises on bad input: unusable documents give ``verdict == "error"``.

    ``kind``: ``"identity"`` (permission policies), ``"trust"`` (a role's assume-role policy) or ``"resource"`` (a
    bucket, key, queue, topic, repository, secret, bus or API policy).
    ``can_write`` (trust): whether the role's permissions include writes or administration (True/False), or None
    when they are not all visible; an OIDC trust of such a role must also pin a branch/environment.
    ``owner_accounts`` (resource): the account IDs that own the resource (and any the organisation trusts); grants
    to other accounts are cross-account. ``service`` (resource): the service prefix of the resource (``"s3"``).
    """
    if kind not in KINDS:
        raise ValueError(f'kind must be one of {", ".join(KINDS)}, got {kind!r}')
    document, error = load_document(document, kind)
    if error is not None:
        return error
    try:
        statements = _parse(document, kind)
        if kind == "identity":
            findings = _analyze_identity(statements)
        elif kind == "trust":
            from ps019.iam.trust import analyze_trust

            findings = analyze_trust(statements, can_write=can_write)
        else:
            from ps019.iam.resource import analyze_resource

            findings = analyze_resource(statements, owner_accounts=owner_accounts, service=service)
    except _GrammarError as exc:
        return IamResult("error", message=str(exc), kind=kind)
    except Exception as exc:  # noqa: BLE001 - a linter must answer, never crash; tests assert this never happens
        return IamResult("error", message=f"internal error while analysing the document: {type(exc).__name__}: {exc}",
                         kind=kind)
    denying = any(not f.advisory for f in findings)
    return IamResult("deny" if denying else "allow", findings, kind=kind)


def policy_can_write(document: Any) -> bool | None:
    """Whether an identity policy grants any write or permissions-management action (after unconditional Denies);
    None when the document cannot be read. ``*``, NotAction, whole-service wildcards and actions the data does not
    know count as writes."""
    document, error = load_document(document)
    if error is not None:
        return None
    try:
        statements = _parse(document, "identity")
    except _GrammarError:
        return None
    except Exception:  # noqa: BLE001
        return None
    for stmt in statements:
        if stmt.effect != "Allow":
            continue
        for actions, _resources in effective_pieces(stmt, statements):
            if actions.comp:
                return True
            for pattern in actions.patterns:
                if set(pattern.partition(":")[2]) <= {"*"}:
                    return True
                matches = _ix.expand(pattern) if _ix.has_wildcard(pattern) else (
                    ((pattern, *_ix.lookup(pattern)),) if _ix.lookup(pattern) else ((pattern, pattern, "W"),))
                if any(code[:1] in ("W", "P") for _l, _c, code in matches):
                    return True
    return False


# --------------------------------------------------------------------------------------------------------------
# Principals (trust and resource policies)
# --------------------------------------------------------------------------------------------------------------

_ACCOUNT = re.compile(r"\d{12}")
_ARN_ACCOUNT = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:(\d{12}):.*", re.IGNORECASE)


def account_of(value: str) -> str | None:
    """The 12-digit account of ``123456789012`` or of an ARN naming it (``arn:aws:iam::123456789012:root``)."""
    value = value.strip()
    if _ACCOUNT.fullmatch(value):
        return value
    m = _ARN_ACCOUNT.fullmatch(value)
    return m.group(1) if m else None


def _pins_caller(key: str, values: list[str]) -> bool:
    if not values:
        return False
    if key in ("aws:principalorgid", "aws:principalaccount"):
        return _literal(values)
    if key == "aws:principalorgpaths":
        return all(v.startswith("o-") and not _ix.has_wildcard(v.split("/", 1)[0]) for v in values)
    if key == "aws:principalarn":
        return all(account_of(v) is not None for v in values)  # role/* of a named account pins the account
    return False


def principal_bounding(stmt: _Stmt) -> list[str]:
    """The condition keys that pin a wildcard principal to an organisation or account (positive operator, literal
    organisation/account): aws:PrincipalOrgID, aws:PrincipalOrgPaths, aws:PrincipalAccount, aws:PrincipalArn."""
    return [key for op, key, values in stmt.conditions if _positive(op) and _pins_caller(key, values)]
