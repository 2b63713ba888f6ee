"""PS019-IDENTITY-003: the identity running ``pulumi up`` on production is an allowed, least-privileged role.

Pure: it judges ``RunContext.deploy_identity``, which the pack's edge filled once per run with
``ps019.aws.identity.lookup_deploy_identity`` (STS GetCallerIdentity + the role's policies, analysed). It reports on
the ``pulumi:pulumi:Stack`` resource, the first resource the engine analyses, so a bad caller stops an update before
anything is created.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.iam.arns import role_arn_matches
from ps019.controls.base import Control, RunContext
from ps019.controls.identity._common import (
    allowed_patterns,
    applies,
    deploy_identity,
)
from ps019.model import Level, ResourceView, Severity, Violation

_FIX_ROLE = ("Fix: run the deployment from CI under the tier's deploy role (OIDC federation), not with personal "
             "or long-lived credentials.")


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    identity = deploy_identity(ctx)
    if identity is None or not applies(ctx, params):
        return
    if getattr(identity, "error", None) or identity.kind == "unknown":
        return  # PS019-IDENTITY-004 reports an identity that could not be established
    where = f"{ctx.tier} stack {ctx.stack_ref}"
    details = {"caller_arn": identity.arn, "kind": identity.kind, "tier": ctx.tier}
    if identity.kind == "root":
        yield Violation(f"{where} is being deployed with the AWS account root user ({identity.arn}). The root user "
                        f"cannot be scoped or audited per job. {_FIX_ROLE} Delete any root access keys.",
                        details=details)
        return
    if identity.kind == "iam-user":
        yield Violation(f"{where} is being deployed by IAM user {identity.arn} (long-lived access keys). "
                        f"{_FIX_ROLE}", details=details)
        return
    if identity.kind == "federated":
        yield Violation(f"{where} is being deployed by federated user {identity.arn} (a GetFederationToken session "
                        f"derived from an IAM user's long-lived keys). {_FIX_ROLE}", details=details)
        return

    candidates = identity.candidate_role_arns()
    patterns = allowed_patterns(ctx, params)
    if patterns is not None and not role_arn_matches(candidates, patterns):
        yield Violation(
            f"{where} is being deployed by role {candidates[0] if candidates else identity.arn} (session "
            f"{identity.session_name!r}), which is not an allowed deploy role for {ctx.tier} "
            f"(allowed: {', '.join(patterns) or 'none'}). {_FIX_ROLE}",
            details={**details, "role_arns": list(candidates), "allowed": list(patterns)},
        )
    admin = [p for p in identity.policy_results if p.admin_equivalent]
    if admin:
        names = ", ".join(p.arn or f"inline policy {p.name!r}" for p in admin)
        yield Violation(
            f"{where} is being deployed by role {identity.role_name!r}, which is admin-equivalent ({names}). A "
            "deploy role needs the actions its stacks manage, not administrator access. Fix: replace these policies "
            "with a deploy policy scoped to the stack's services and resources (bound role creation with "
            "iam:PermissionsBoundary).",
            details={**details, "admin_policies": [p.to_evidence() for p in admin]},
        )


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id="PS019-IDENTITY-003",
    title="Production is deployed by an allowed, least-privileged role",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "The credentials that run `pulumi up` can do everything the stack does and more. The root user, IAM users "
        "(long-lived keys), roles outside the platform's deploy roles, and administrator roles are not managed, "
        "least-privileged identities."
    ),
    remediation=(
        "Deploy production from CI under a federated deploy role that matches ps019-settings.identity."
        "allowed_deploy_roles.production and carries a scoped deploy policy."
    ),
    resource_types=("pulumi:pulumi:Stack",),
    config_model="ps019.controls.identity.config:DeployCaller",  # unknown tier: production rules, as the gate
    check=check,
)
