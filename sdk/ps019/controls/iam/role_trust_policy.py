"""PS019-IAM-002: a role's trust policy names who may assume it, precisely."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam.documents import document_paths, policy_violations, resource_label
from ps019.controls.iam._role_permissions import role_can_write
from ps019.model import Level, ResourceView, Severity, Violation

TRUST_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:iam/role:Role": (("assumeRolePolicy",),),
    "aws-native:iam:Role": (("assumeRolePolicyDocument",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    label = resource_label(view)
    can_write = role_can_write(view)
    for where, document in document_paths(view.props, TRUST_PATHS.get(view.type, ())):
        yield from policy_violations(document, kind="trust", where=where, resource_label=label, can_write=can_write)


CONTROL = Control(
    id="PS019-IAM-002",
    title="IAM role trust policies name who may assume the role",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A trust policy with Principal '*' (unless pinned by aws:PrincipalOrgID, aws:PrincipalAccount or "
        "aws:PrincipalArn), NotPrincipal, or an OIDC trust without an audience and a subject pinned to one "
        "repository/project lets identities outside your control assume the role: any GitHub repository, any AWS "
        "account. A role that can write must also pin the branch, environment, stack, workspace or service account, "
        "so that a pull request or feature branch cannot deploy with it. Judged per provider: GitHub Actions, "
        "GitLab, Pulumi Cloud, Terraform Cloud, EKS IRSA, Cognito and generic issuers."
    ),
    remediation=(
        "Name the principal (an account with sts:ExternalId, a single service principal, a role ARN), or pin a "
        "wildcard principal with an exact aws:PrincipalOrgID / aws:PrincipalArn condition. For GitHub OIDC add "
        "StringEquals on token.actions.githubusercontent.com:aud ('sts.amazonaws.com') and on "
        "token.actions.githubusercontent.com:sub 'repo:<org>/<repo>:environment:<env>' (or ':ref:refs/heads/<branch>')."
    ),
    resource_types=tuple(TRUST_PATHS),
    check=check,
)
