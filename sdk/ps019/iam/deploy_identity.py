"""What the edge learnt about who runs ``pulumi up``: plain frozen data the identity controls judge.

``ps019.aws.identity.lookup_deploy_identity`` (the edge that asks STS and IAM) builds it; the evidence record keeps
``to_evidence()`` and a fixture or a record rebuilds it with ``from_mapping``. It never holds credentials. It lives
in the core so that controls never import the AWS edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ps019.iam.arns import CallerKind, classify_caller_arn

DEFAULT_ENDPOINT_SOURCE = "AWS default endpoint (environment and config-file overrides ignored)"


@dataclass(frozen=True)
class RolePolicyResult:
    """One policy of the deploy role, analysed."""

    name: str
    source: str  # "managed" | "inline"
    arn: str | None = None  # managed policies only
    verdict: str = "allow"  # allow | deny | error | unreadable
    admin_equivalent: bool = False
    categories: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()  # one line per finding (what, which statement)
    error: str | None = None

    def to_evidence(self) -> dict[str, Any]:
        return {
            "name": self.name, "source": self.source, "arn": self.arn, "verdict": self.verdict,
            "admin_equivalent": self.admin_equivalent, "categories": list(self.categories),
            "findings": list(self.findings), "error": self.error,
        }


@dataclass(frozen=True)
class DeployIdentity:
    arn: str | None
    account: str | None
    kind: CallerKind
    role_name: str | None = None
    session_name: str | None = None
    policy_results: tuple[RolePolicyResult, ...] = ()
    error: str | None = None  # the caller could not be established at all
    # Additive fields:
    role_arn: str | None = None  # the IAM role ARN (with its path when the IAM API told us)
    policies_error: str | None = None  # the caller is known but its policies could not be read
    iam_data_version: str | None = None
    sts_endpoint: str | None = None  # the endpoint asked (None: AWS's own endpoint for the region)
    endpoint_source: str = "AWS default endpoint (environment and config-file overrides ignored)"
    ignored_overrides: tuple[str, ...] = ()  # names of environment / config-file overrides that were ignored

    @property
    def verified(self) -> bool:
        return self.error is None and self.kind != "unknown" and self.policies_error is None

    @property
    def admin_equivalent_policies(self) -> tuple[RolePolicyResult, ...]:
        return tuple(p for p in self.policy_results if p.admin_equivalent)

    def candidate_role_arns(self) -> tuple[str, ...]:
        """Role ARNs to match against the allowed patterns: with the role's path when known, and without."""
        caller = classify_caller_arn(self.arn)
        arns = [self.role_arn, caller.role_arn("/")]
        return tuple(dict.fromkeys(a for a in arns if a))

    def to_evidence(self) -> dict[str, Any]:
        return {
            "arn": self.arn, "account": self.account, "kind": self.kind, "role_name": self.role_name,
            "role_arn": self.role_arn, "session_name": self.session_name, "error": self.error,
            "policies_error": self.policies_error, "iam_data_version": self.iam_data_version,
            "policies": [p.to_evidence() for p in self.policy_results],
            "sts_endpoint": {"url": self.sts_endpoint, "source": self.endpoint_source},
            "ignored_overrides": list(self.ignored_overrides),
        }

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "DeployIdentity":
        """Rebuild from ``to_evidence()`` output or a test fixture."""
        policies = tuple(
            RolePolicyResult(
                name=p.get("name", ""), source=p.get("source", "managed"), arn=p.get("arn"),
                verdict=p.get("verdict", "allow"), admin_equivalent=bool(p.get("admin_equivalent")),
                categories=tuple(p.get("categories", ())), findings=tuple(p.get("findings", ())), error=p.get("error"),
            )
            for p in data.get("policies", data.get("policy_results", ())) or ()
        )
        caller = classify_caller_arn(data.get("arn"))
        return cls(
            arn=data.get("arn"), account=data.get("account") or caller.account or None,
            kind=data.get("kind") or caller.kind, role_name=data.get("role_name") or caller.role_name,
            session_name=data.get("session_name") or caller.session_name, policy_results=policies,
            error=data.get("error"), role_arn=data.get("role_arn"), policies_error=data.get("policies_error"),
            iam_data_version=data.get("iam_data_version"),
            sts_endpoint=(data.get("sts_endpoint") or {}).get("url"),
            endpoint_source=(data.get("sts_endpoint") or {}).get("source") or DEFAULT_ENDPOINT_SOURCE,
            ignored_overrides=tuple(data.get("ignored_overrides") or ()),
        )
