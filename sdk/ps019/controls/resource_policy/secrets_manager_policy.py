"""PS019-RBP-007: Secrets Manager resource policies grant no public or cross-account secret access."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, check_documents
from ps019.model import Level, ResourceView, Severity, Violation

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:secretsmanager/secretPolicy:SecretPolicy": (("policy",),),
    "aws-native:secretsmanager:ResourcePolicy": (("resourcePolicy",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    yield from check_documents(view, ctx, params, DOCUMENT_PATHS)


CONTROL = Control(
    id="PS019-RBP-007",
    title="Secrets Manager resource policies grant no public or cross-account secret access",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A secret's resource policy that lets Principal \"*\" or another account read, rotate or re-permission the "
        "secret puts credentials outside the account's control."
    ),
    remediation=(
        "Grant GetSecretValue to named roles of the owning account; bound any wider statement with "
        "aws:PrincipalOrgID and keep PutSecretValue/PutResourcePolicy in the owning account."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    config_model=CONFIG_MODEL,
    check=check,
)
