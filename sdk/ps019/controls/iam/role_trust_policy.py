"""PS019-IAM-002: a role's trust policy names who may assume it, precisely.

On a role resource the trust policy is judged with what the role's own resource shows it can do (inline policies,
``managedPolicyArns``). Permissions attached by other resources (``RolePolicyAttachment``, ``RolePolicy``,
``PolicyAttachment``, ...) are joined at the attachment: the engine analyses it after its role, so an attachment that
lets a role write is checked against the role's trust, and an OIDC trust without a branch or environment pin blocks
the attachment before it is made.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam._role_permissions import role_can_write
from ps019.controls.iam._roles import (
    CUSTOMER_POLICY_TYPES,
    ROLE_REFERENCES,
    ROLE_TYPES,
    attached_roles,
    customer_policy,
    role_trust,
    trust_known,
)
from ps019.controls.iam.documents import document_paths, finding_details, policy_violations, resource_label, summarise
from ps019.model import Level, ResourceView, Severity, Violation, contains_unknown, is_unknown

TRUST_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:iam/role:Role": (("assumeRolePolicy",),),
    "aws-native:iam:Role": (("assumeRolePolicyDocument",),),
}
# What each attaching resource grants: an inline document, or managed policy ARN(s)
_ATTACHED_DOCUMENTS = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws-native:iam:RolePolicy": "policyDocument",
    "aws-native:iam:ManagedPolicy": "policyDocument",
    "aws-native:iam:Policy": "policyDocument",
}
_ATTACHED_ARNS = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn",),
    "aws:iam/policyAttachment:PolicyAttachment": ("policyArn",),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("policyArns", "*"),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    label = resource_label(view)
    if view.type in TRUST_PATHS:
        can_write = role_can_write(view)
        for where, document in document_paths(view.props, TRUST_PATHS.get(view.type, ())):
            yield from policy_violations(document, kind="trust", where=where, resource_label=label,
                                         can_write=can_write)
        return
    yield from _attachment(view, ctx, label)


def _attachment(view: ResourceView, ctx: RunContext, label: str) -> Iterable[Violation]:
    """An attachment that lets a role write: the role's trust judged as that of a role that can write, reporting what
    the role's own resource did not already report."""
    from ps019.iam import analyze_policy

    writes, what = _grants_writes(view, ctx)
    if not writes:
        return  # reads only, or not known yet (preview): the role's own check already asked for the pin
    for ref in attached_roles(view, ctx):
        if ref.view is None:
            continue
        prop, trust = role_trust(ref.view)
        if not trust_known(trust):
            continue  # the role's own check reports an unknown trust
        own = role_can_write(ref.view)
        if own:
            continue  # judged as a writing role on the role already
        before = {f.message for f in analyze_policy(trust, kind="trust", can_write=own).denying}
        new = [f for f in analyze_policy(trust, kind="trust", can_write=True).denying if f.message not in before]
        if new:
            yield Violation(
                f"{label} lets {ref.label} write ({what}), and the role's trust policy at '{prop}' is not pinned "
                f"enough for a role that can write: {summarise(new)}",
                details={"verdict": "deny", "document": prop, "role": ref.view.name, "role_urn": ref.view.urn,
                         "grants": what, "findings": [finding_details(f) for f in new]},
            )


def _grants_writes(view: ResourceView, ctx: RunContext) -> tuple[bool | None, str]:
    """(whether what ``view`` attaches grants a write or permissions-management action, what it is)."""
    from ps019.iam import deprecated_replacement, managed_policy_info
    from ps019.iam.analysis import policy_can_write

    prop = _ATTACHED_DOCUMENTS.get(view.type)
    if prop is not None:
        document = view.props.get(prop)
        if document in (None, "") or is_unknown(document) or contains_unknown(document):
            return None, ""
        return policy_can_write(document), f"its policy at '{prop}' grants writes"
    if view.type not in _ATTACHED_ARNS:
        return False, ""
    unknown = False
    for where, arn in document_paths(view.props, (_ATTACHED_ARNS[view.type],)):
        if not isinstance(arn, str) or not arn:
            unknown = True
            continue
        info = managed_policy_info(arn) or deprecated_replacement(arn)
        if info is not None:
            document, name = info.document, f"AWS managed policy {arn.rsplit('/', 1)[-1]}"
        else:
            found = customer_policy(ctx, view, arn)
            if found is None or found[0] in (None, "") or contains_unknown(found[0]):
                unknown = True
                continue
            document, name = found[0], f"policy {found[1]!r} of this stack"
        if policy_can_write(document):
            return True, f"{name} at '{where}' grants writes"
    return (None if unknown else False), ""


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
        "GitLab, Pulumi Cloud, Terraform Cloud, EKS IRSA, Cognito and generic issuers. Permissions attached by "
        "other resources are joined at the attachment, which is blocked when it makes such a role able to write."
    ),
    remediation=(
        "Name the principal (an account with sts:ExternalId, a single service principal, a role ARN), or pin a "
        "wildcard principal with an exact aws:PrincipalOrgID / aws:PrincipalArn condition. For GitHub OIDC add "
        "StringEquals on token.actions.githubusercontent.com:aud ('sts.amazonaws.com') and on "
        "token.actions.githubusercontent.com:sub 'repo:<org>/<repo>:environment:<env>' (or ':ref:refs/heads/<branch>')."
    ),
    resource_types=tuple(TRUST_PATHS) + tuple(ROLE_REFERENCES),
    joins=ROLE_TYPES + CUSTOMER_POLICY_TYPES,
    check=check,
)
