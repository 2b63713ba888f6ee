"""PS019-IDENTITY-002: roles an AWS provider assumes are allowed deploy roles for the stack's tier."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from ps019.iam.arns import role_arn_matches
from ps019.controls.base import Control, RunContext
from ps019.controls.identity._common import allowed_patterns, decoded
from ps019.model import Level, ResourceView, Severity, Violation, is_unknown

PROVIDER_TYPES = ("pulumi:providers:aws", "pulumi:providers:aws-native")


def assumed_role_arns(props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(where, roleArn) for ``assumeRoles`` (aws v6+: a list), ``assumeRole`` (aws v5, aws-native: one object) and
    ``assumeRoleWithWebIdentity``; values may be JSON text or unknown."""
    roles = decoded(props.get("assumeRoles"))
    if is_unknown(roles):
        yield "assumeRoles", roles
    elif isinstance(roles, list):
        for i, entry in enumerate(roles):
            entry = decoded(entry)
            if is_unknown(entry):
                yield f"assumeRoles[{i}]", entry
            elif isinstance(entry, Mapping) and entry.get("roleArn") not in (None, ""):
                yield f"assumeRoles[{i}].roleArn", entry["roleArn"]
    for key in ("assumeRole", "assumeRoleWithWebIdentity"):
        entry = decoded(props.get(key))
        if is_unknown(entry):
            yield key, entry
        elif isinstance(entry, Mapping) and entry.get("roleArn") not in (None, ""):
            yield f"{key}.roleArn", entry["roleArn"]


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    patterns = allowed_patterns(ctx, params)
    if patterns is None:
        return  # no allowed deploy roles configured for this tier: nothing to enforce
    for where, arn in assumed_role_arns(view.props):
        if is_unknown(arn):
            yield Violation(
                f"{view.type} '{view.name}': the role at '{where}' cannot be verified until update: it is computed "
                "from another resource. Under `pulumi up` the update pass checks it; offline the update sees a "
                "stand-in role ARN, which is not the real one.",
                details={"unverifiable": True, "where": where},
            )
            continue
        arn = str(arn)
        if role_arn_matches([arn], patterns):
            continue
        yield Violation(
            f"{view.type} '{view.name}' assumes {arn} ('{where}'), which is not an allowed deploy role for "
            f"{ctx.tier} stacks (allowed: {', '.join(patterns) or 'none'}). Fix: assume one of the allowed deploy "
            "roles, or ask the platform team to add this role to allowedDeployRoles for this tier.",
            details={"role_arn": arn, "where": where, "tier": ctx.tier, "allowed": list(patterns)},
        )


CONTROL = Control(
    id="PS019-IDENTITY-002",
    title="AWS providers assume only allowed deploy roles",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale=(
        "The role a provider assumes is the identity that actually changes the environment. Only the platform "
        "team's managed, least-privileged deploy roles may change a tier; anything else bypasses that review."
    ),
    remediation=(
        "Point the provider's assumeRoles at an allowed deploy role for the stack's tier. Platform teams configure "
        "the patterns in ps019-settings.identity.allowed_deploy_roles (or this control's allowedDeployRoles)."
    ),
    resource_types=PROVIDER_TYPES,
    config_model="ps019.controls.identity.config:AllowedDeployRoles",
    check=check,
)
