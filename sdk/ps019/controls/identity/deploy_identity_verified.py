"""PS019-IDENTITY-004: the deploy identity of a production run could be established and its policies read.

Separate from PS019-IDENTITY-003 so that platform teams can choose how strict to be when AWS cannot answer (set this
control to "advisory" to let deployments proceed with a warning when STS or IAM is unreachable or denied).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.identity._common import applies, deploy_identity
from ps019.model import Level, ResourceView, Severity, Violation

SELF_READ_ACTIONS = ("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:GetRolePolicy",
                     "iam:GetPolicy", "iam:GetPolicyVersion")


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    identity = deploy_identity(ctx)
    if identity is None or not applies(ctx, params):
        return  # the lookup is off (see docs/deploy-identity.md): nothing was asked, nothing to report
    where = f"{ctx.tier} stack {ctx.stack_ref}"
    if identity.error or identity.kind == "unknown":
        reason = identity.error or f"STS returned an ARN ps019 does not recognise ({identity.arn})"
        yield Violation(
            f"The identity deploying {where} could not be verified: {reason}. Fix: run with the deploy role's "
            "credentials available to the pulumi process and AWS STS reachable, or set "
            "ps019-settings.identity.lookup to 'off' if this stack does not deploy to AWS.",
            details={"error": reason, "kind": identity.kind},
        )
        return
    if identity.policies_error:
        yield Violation(
            f"The policies of deploy role {identity.role_name!r} for {where} could not be read, so its privileges "
            f"could not be verified: {identity.policies_error}. Fix: allow the role to read itself "
            f"({', '.join(SELF_READ_ACTIONS)} on its own ARN and its attached policies).",
            details={"error": identity.policies_error, "role": identity.role_name},
        )


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id="PS019-IDENTITY-004",
    title="The production deploy identity can be verified",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.MEDIUM,
    level=Level.MANDATORY,
    rationale=(
        "If ps019 cannot tell who is deploying, or what that role may do, it cannot show that production was changed "
        "by a managed, least-privileged identity; failing closed keeps the evidence honest."
    ),
    remediation=(
        "Make the deploy role's credentials available to the pulumi process, keep STS reachable, and let the role "
        "read its own policies. Set this control to advisory to proceed with a warning instead."
    ),
    resource_types=("pulumi:pulumi:Stack",),
    config_model="ps019.controls.identity.config:ProductionTiers",  # unknown tier: production rules, as the gate
    check=check,
)
