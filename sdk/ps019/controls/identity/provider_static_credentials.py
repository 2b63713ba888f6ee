"""PS019-IDENTITY-001: a production stack's AWS provider carries no static credentials."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.identity._common import applies
from ps019.model import Level, ResourceView, Severity, Violation

PROVIDER_TYPES = ("pulumi:providers:aws", "pulumi:providers:aws-native")
# Provider inputs that hold static credentials (values are never echoed: they are usually secrets).
CREDENTIAL_KEYS = ("accessKey", "secretKey", "token")


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    if not applies(ctx, params):
        return
    present = [k for k in CREDENTIAL_KEYS if view.props.get(k) not in (None, "")]
    if not present:
        return
    default = view.name.startswith("default")
    source = ("stack config (aws:" + ", aws:".join(present) + ")") if default else "the provider's arguments"
    yield Violation(
        f"{view.type} '{view.name}' on {ctx.tier} stack {ctx.stack_ref} is configured with static credentials "
        f"({', '.join(present)}) from {source}. Static keys are long-lived and bypass the managed deploy identity. "
        "Fix: remove them and let the provider use the deploy job's role (OIDC federation / instance role), or "
        "set assumeRoles to an allowed deploy role.",
        details={"credential_keys": present, "default_provider": default},
    )


CONTROL = Control(
    id="PS019-IDENTITY-001",
    title="AWS providers on production stacks use no static credentials",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale=(
        "accessKey/secretKey in provider config (often a secret in stack config) mean production is deployed with "
        "a long-lived IAM user key rather than the managed, least-privileged deploy role."
    ),
    remediation=(
        "Delete aws:accessKey/aws:secretKey/aws:token from the stack config and provider arguments; run the deploy "
        "under a federated role, optionally with provider assumeRoles pointing at an allowed deploy role."
    ),
    resource_types=PROVIDER_TYPES,
    config_model="ps019.controls.identity.config:ProductionTiers",  # unknown tier: production rules, as the gate
    check=check,
)
