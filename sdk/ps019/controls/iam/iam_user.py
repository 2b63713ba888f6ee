"""PS019-IAM-005: people and pipelines use federated roles, not IAM users."""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam.documents import resource_label
from ps019.model import Level, ResourceView, Severity, Violation, is_unknown

NAME_PROPERTY = {"aws:iam/user:User": "name", "aws-native:iam:User": "userName"}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    name = view.props.get(NAME_PROPERTY.get(view.type, "name"))
    allowed = [str(p) for p in params.get("allowedUserNames") or ()]
    if isinstance(name, str) and any(fnmatch.fnmatchcase(name, p) for p in allowed):
        return
    who = "<computed>" if is_unknown(name) else repr(str(name)) if name else repr(view.name)
    console = view.props.get("loginProfile") not in (None, "", {})
    extra = " with a console password (loginProfile)" if console else ""
    yield Violation(
        f"{resource_label(view)} creates IAM user {who}{extra}. IAM users sign in with long-lived passwords and "
        "access keys. Fix: give people access through IAM Identity Center (SSO) and pipelines through OIDC-federated "
        "roles; if this user must exist (e.g. an SMTP credential), add its name to allowedUserNames.",
        details={"verdict": "deny", "user": name if isinstance(name, str) else None, "console": console},
    )


CONTROL = Control(
    id="PS019-IAM-005",
    title="No IAM users for people or pipelines",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.MEDIUM,
    level=Level.ADVISORY,
    rationale=(
        "An IAM user is an unmanaged identity with long-lived credentials; PS-019 asks for managed identities. "
        "Users created by IaC are usually service accounts whose keys end up in CI variables."
    ),
    remediation=(
        "Replace the user with a role assumed through IAM Identity Center (people) or OIDC federation (CI). List "
        "unavoidable service users in allowedUserNames so the exception is visible in the pack config."
    ),
    resource_types=tuple(NAME_PROPERTY),
    config_model="ps019.controls.iam.config:IamUserConfig",
    check=check,
)
