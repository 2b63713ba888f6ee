"""AWS managed policies designed for a service role, and whether a role's trust admits only that service
(docs/iam.md, "AWS-designed service access").

AmazonEKSClusterPolicy, AWSLambdaVPCAccessExecutionRole or AmazonEBSCSIDriverPolicy grant ENI, volume or load-balancer
deletes on ``*`` because the service they are written for needs them. Judged like any document they are denied; on a
role that only that service (or the add-on's EKS service account) can assume they are AWS's documented design, so the
operational part of what they grant is reported as an advisory instead. The same policy on a role that people, CI or
another account can assume stays denied.

    >>> from ps019.iam.service_roles import service_design, trust_admits_only
    >>> design = service_design("AmazonEKSClusterPolicy")
    >>> trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
    ...          "Principal": {"Service": "eks.amazonaws.com"}}]}
    >>> trust_admits_only(design, trust).ok
    True

Pure and offline: the intended principals are ``knowledge.SERVICE_POLICIES`` (each with its AWS documentation),
optionally extended by the caller (PS019-IAM-003's ``servicePolicyPrincipals``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ps019.iam import index as _ix
from ps019.iam import knowledge as K
from ps019.iam.analysis import PolicyGrammarError, _positive, load_document, parse_statements

_ACCOUNT_SERVICE_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
TOLERATED_REASON = "AWS-designed service access"


@dataclass(frozen=True)
class ServiceDesign:
    """What an AWS managed policy is designed for: ``principals`` the role's trust may admit (service principals and
    IRSA subjects ``system:serviceaccount:<ns or *>:<name>``), ``holder`` who holds the credentials."""

    policy: str
    principals: tuple[str, ...]
    holder: str
    configured: bool = False  # from the control's servicePolicyPrincipals, not ps019's documented table

    def tolerates(self, finding: Any) -> bool:
        """Whether ``finding`` (an IamFinding of the policy's own analysis) is part of the service's designed access:
        reported as an advisory on a role only the service can assume."""
        category = getattr(getattr(finding, "category", None), "value", "")
        severity = getattr(getattr(finding, "severity", None), "value", "")
        if category not in K.SERVICE_DESIGN_TOLERATED[self.holder]:
            return False
        return not (self.holder == K.WORKLOAD_HOLDER and severity == "critical")

    def describe(self) -> str:
        return " or ".join(self.principals)

    def tolerated_reason(self, finding: Any) -> str | None:
        """The reason ``finding`` is only an advisory on a role only the service can assume, or None."""
        return TOLERATED_REASON if self.tolerates(finding) else None

    def apply(self, result: Any) -> Any:
        """``result`` (the policy's IamResult) with the findings this design tolerates turned into advisories."""
        import dataclasses

        findings = [dataclasses.replace(f, advisory=True, message=f"{f.message} ({TOLERATED_REASON})")
                    if not f.advisory and self.tolerates(f) else f for f in result.findings]
        verdict = result.verdict if result.verdict == "error" else (
            "deny" if any(not f.advisory for f in findings) else "allow")
        return dataclasses.replace(result, verdict=verdict, findings=findings)


@dataclass(frozen=True)
class TrustMatch:
    ok: bool
    admitted: tuple[str, ...] = ()  # the principals the trust admits (services, IRSA subjects), when ok
    reason: str = ""  # when not ok: what else the trust admits, or why it cannot be read


def service_design(policy_name: str, extra: Mapping[str, Iterable[str]] | None = None) -> ServiceDesign | None:
    """The documented (or configured) intended principals of an AWS managed policy, by name; None when ps019 does not
    know the policy to be designed for a service role."""
    if not isinstance(policy_name, str):
        return None
    for name, principals in (extra or {}).items():
        if isinstance(name, str) and name.lower() == policy_name.lower():
            listed = tuple(str(p) for p in principals if isinstance(p, str) and p)
            if listed:
                return ServiceDesign(policy_name, listed, K.WORKLOAD_HOLDER, configured=True)
    for name, entry in K.SERVICE_POLICIES.items():
        if name.lower() == policy_name.lower():
            return ServiceDesign(name, entry.principals, entry.holder)
    return None


def trust_admits_only(design: ServiceDesign, trust: Any) -> TrustMatch:
    """Whether every principal a role's trust policy admits is one ``design`` names: its service principal(s), or an
    EKS OIDC provider whose ``sub`` is pinned (positive operator, literal values) to the add-on's service account.
    Any AWS account or role, ``*``, ``NotPrincipal``, another service, another OIDC issuer or service account, or an
    unreadable document is not."""
    document, error = load_document(trust, "trust")
    if error is not None:
        return TrustMatch(False, reason=f"the role's trust policy cannot be read ({error.message})")
    try:
        statements = parse_statements(document, "trust")
    except PolicyGrammarError as exc:
        return TrustMatch(False, reason=f"the role's trust policy cannot be read ({exc})")
    services = {p.lower() for p in design.principals if not p.startswith(K.IRSA_SUBJECT_PREFIX)}
    accounts = [p for p in design.principals if p.startswith(K.IRSA_SUBJECT_PREFIX)]
    admitted: list[str] = []
    allows = [s for s in statements if s.effect == "Allow"]
    if not allows:
        return TrustMatch(False, reason="the role's trust policy admits no one")
    for stmt in allows:
        if stmt.not_principal is not None or stmt.principal == "*":
            return TrustMatch(False, reason=f"its trust policy (statement {stmt.label}) admits every principal but "
                                            "those named" if stmt.not_principal is not None else
                                            f"its trust policy (statement {stmt.label}) admits \"*\"")
        principal = stmt.principal if isinstance(stmt.principal, dict) else {}
        for ptype, ids in principal.items():
            for pid in ids:
                if ptype == "Service" and _service(pid) in services:
                    admitted.append(pid)
                    continue
                if ptype == "Federated" and accounts:
                    subjects, why = _irsa_subjects(stmt, pid)
                    if subjects and all(any(_subject_matches(s, a) for a in accounts) for s in subjects):
                        admitted.extend(subjects)
                        continue
                    why = why or f"for service account(s) {', '.join(subjects)}"
                    return TrustMatch(False, reason=f"its trust policy admits {ptype} {pid!r} {why}")
                return TrustMatch(False, reason=f"its trust policy also admits {ptype} {pid!r}")
    return TrustMatch(True, admitted=tuple(dict.fromkeys(admitted)))


def _service(principal: str) -> str:
    lowered = principal.lower()
    for suffix in _ACCOUNT_SERVICE_SUFFIXES[1:]:
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)] + ".amazonaws.com"
    return lowered


_EKS_ISSUER = re.compile(r"oidc\.eks\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/id/[^/]+")


def _irsa_subjects(stmt: Any, federated: str) -> tuple[list[str], str]:
    """The service-account subjects an EKS IRSA statement pins (every positive, literal ``<issuer>:sub`` value), or
    ([], why not)."""
    lowered = federated.lower()
    host = lowered.split(":oidc-provider/", 1)[1] if ":oidc-provider/" in lowered else ""
    if not _EKS_ISSUER.fullmatch(host):
        hosts = [key.rpartition(":")[0] for _op, key, _v in stmt.conditions if key.endswith(":sub")]
        if federated.startswith("arn:aws:ps019:::") and hosts and all(_EKS_ISSUER.fullmatch(h) for h in hosts):
            host = hosts[0]  # the provider's ARN is computed (preview): judged by the issuer in its sub key
        else:
            return [], "(not an EKS cluster's OIDC provider)"
    subjects: list[str] = []
    for op, key, values in stmt.conditions:
        if key != f"{host}:sub":
            continue
        if op.startswith("foranyvalue:"):
            op = op[len("foranyvalue:"):]
        if not _positive(op):
            return [], f"with {host}:sub tested by {op}, which does not pin the service account"
        if not values or any(_ix.has_wildcard(v) for v in values):
            return [], f"with a wildcard {host}:sub"
        if subjects:  # several positive sub conditions must all hold: keep the values every one allows
            subjects = [v for v in subjects if v in values]
        else:
            subjects = list(values)
    if not subjects:
        return [], f"without a {host}:sub condition naming the service account"
    return subjects, ""


def _subject_matches(subject: str, pattern: str) -> bool:
    """``system:serviceaccount:kube-system:aws-node`` against ``system:serviceaccount:*:aws-node``: the namespace
    may be any literal one, the service account name is the add-on's."""
    s_parts, p_parts = subject.split(":"), pattern.split(":")
    if len(s_parts) != 4 or len(p_parts) != 4 or s_parts[:2] != p_parts[:2]:
        return False
    return (p_parts[2] in ("*", s_parts[2])) and p_parts[3] == s_parts[3]
