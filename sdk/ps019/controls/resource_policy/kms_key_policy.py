"""PS019-RBP-003: key policies grant no public or cross-account key use or administration."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, check_documents
from ps019.model import Level, ResourceView, Severity, Violation

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:kms/key:Key": (("policy",),),
    "aws:kms/replicaKey:ReplicaKey": (("policy",),),
    "aws:kms/replicaExternalKey:ReplicaExternalKey": (("policy",),),
    "aws:kms/externalKey:ExternalKey": (("policy",),),
    "aws:kms/keyPolicy:KeyPolicy": (("policy",),),
    "aws-native:kms:Key": (("keyPolicy",),),
    "aws-native:kms:ReplicaKey": (("keyPolicy",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    yield from check_documents(view, ctx, params, DOCUMENT_PATHS)


CONTROL = Control(
    id="PS019-RBP-003",
    title="KMS key policies grant no public or cross-account key use or administration",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A key policy is the only policy that always applies to a KMS key. Principal \"*\" without a caller or "
        "source condition, or another account allowed to decrypt, re-encrypt or change the key policy, hands the "
        "data the key protects (or the key itself) to someone outside the account."
    ),
    remediation=(
        "Keep the default statement for the owning account root and grant key use to named roles; bound any wider "
        "statement with kms:CallerAccount, kms:ViaService plus aws:PrincipalOrgID, or aws:SourceAccount."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    config_model=CONFIG_MODEL,
    check=check,
)
