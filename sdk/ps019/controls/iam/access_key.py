"""PS019-IAM-004: a change does not mint long-lived IAM access keys."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam.documents import resource_label
from ps019.model import Level, ResourceView, Severity, Violation, is_unknown

USER_PROPERTY = {
    "aws:iam/accessKey:AccessKey": "user",
    # Removed from aws-native in March 2024 (not supported by Cloud Control); older programs still register it.
    "aws-native:iam:AccessKey": "userName",
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    status = view.props.get("status")
    if isinstance(status, str) and status.lower() == "inactive":
        return  # an inactive key cannot sign requests; activating it later is a change this control sees again
    user = view.props.get(USER_PROPERTY.get(view.type, "user"))
    who = "<computed>" if is_unknown(user) else repr(str(user)) if user else "an IAM user"
    yield Violation(
        f"{resource_label(view)} creates a long-lived access key for IAM user {who}. Long-lived keys do not expire "
        "and end up in CI variables and laptops. Fix: give the workload a role instead (OIDC federation for CI, "
        "instance profiles / IRSA / ECS task roles for compute) and delete the key; if a key is unavoidable, record "
        "an exception with an expiry.",
        details={"verdict": "deny", "user": user if isinstance(user, str) else None},
    )


CONTROL = Control(
    id="PS019-IAM-004",
    title="No long-lived IAM access keys are created",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale=(
        "An access key is a static credential: it does not expire, is copied into pipelines and config files, and "
        "is not tied to a managed identity. PS-019 requires jobs to run under managed identities."
    ),
    remediation=(
        "Use role-based, short-lived credentials (OIDC federation, instance profiles, IRSA, task roles). Set the "
        "key's status to 'Inactive' while migrating; record an exception if a key must exist."
    ),
    resource_types=tuple(USER_PROPERTY),
    check=check,
)
