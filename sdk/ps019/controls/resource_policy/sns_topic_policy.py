"""PS019-RBP-005: topic policies grant no public or cross-account publishes, subscriptions or policy changes."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, check_documents
from ps019.model import Level, ResourceView, Severity, Violation

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:sns/topicPolicy:TopicPolicy": (("policy",),),
    "aws:sns/topic:Topic": (("policy",),),
    "aws-native:sns:TopicPolicy": (("policyDocument",),),
    "aws-native:sns:TopicInlinePolicy": (("policyDocument",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    yield from check_documents(view, ctx, params, DOCUMENT_PATHS)


CONTROL = Control(
    id="PS019-RBP-005",
    title="SNS topic policies grant no public or cross-account publishes, subscriptions or policy changes",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A topic policy with Principal \"*\" lets anyone publish to or subscribe to the topic (reading every message) "
        "or change its attributes; a service principal without aws:SourceArn/aws:SourceAccount can be made to "
        "publish for another account."
    ),
    remediation=(
        "Name the publishing principals; bound AWS service principals with aws:SourceArn or aws:SourceAccount and "
        "organisation-wide access with aws:PrincipalOrgID."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    config_model=CONFIG_MODEL,
    check=check,
)
