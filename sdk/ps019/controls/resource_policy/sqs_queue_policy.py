"""PS019-RBP-004: queue policies grant no public or cross-account sends, deletes or policy changes."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, check_documents
from ps019.model import Level, ResourceView, Severity, Violation

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:sqs/queuePolicy:QueuePolicy": (("policy",),),
    "aws:sqs/queue:Queue": (("policy",),),
    "aws-native:sqs:QueuePolicy": (("policyDocument",),),
    "aws-native:sqs:QueueInlinePolicy": (("policyDocument",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    yield from check_documents(view, ctx, params, DOCUMENT_PATHS)


CONTROL = Control(
    id="PS019-RBP-004",
    title="SQS queue policies grant no public or cross-account sends, deletes or policy changes",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A queue policy with Principal \"*\" lets anyone send (inject work), receive, purge or re-permission the "
        "queue; a service principal such as sns.amazonaws.com without aws:SourceArn lets another account's topic "
        "deliver into it (the confused-deputy problem)."
    ),
    remediation=(
        "Name the sending principal; for an AWS service add aws:SourceArn (the topic, bucket or rule that sends) or "
        "aws:SourceAccount."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    config_model=CONFIG_MODEL,
    check=check,
)
