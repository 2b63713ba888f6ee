"""PS019-RBP-008: EventBridge bus policies grant no public or unbounded cross-account event delivery or rule changes."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam.documents import policy_violations, resource_label
from ps019.controls.resource_policy._common import (
    CLAUSE,
    CONFIG_MODEL,
    check_documents,
    owner_accounts,
    synthetic_policy,
)
from ps019.model import Level, ResourceView, Severity, Violation, is_unknown

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:cloudwatch/eventBusPolicy:EventBusPolicy": (("policy",),),
    "aws-native:events:EventBus": (("policy",),),
}
# Resources that grant by properties (one statement) rather than a document.
PERMISSION_TYPES = ("aws:cloudwatch/eventPermission:EventPermission", "aws-native:events:EventBusPolicy")


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    if view.type not in PERMISSION_TYPES:
        yield from check_documents(view, ctx, params, DOCUMENT_PATHS)
        return
    label = resource_label(view)
    props = view.props
    statement = props.get("statement")
    if statement not in (None, "", {}):  # aws-native: a whole statement object (or its JSON text)
        if isinstance(statement, str):
            try:
                statement = json.loads(statement)
            except ValueError:
                pass
        document: Any = ({"Version": "2012-10-17", "Statement": [statement]}
                         if isinstance(statement, Mapping) or is_unknown(statement) else statement)
        where = "statement"
    else:
        if props.get("principal") in (None, ""):
            return
        condition = props.get("condition")
        conditions: dict[str, dict[str, Any]] = {}
        if isinstance(condition, Mapping) and isinstance(condition.get("key"), str):
            conditions = {str(condition.get("type") or "StringEquals"): {condition["key"]: condition.get("value")}}
        document = synthetic_policy(props.get("principal"), props.get("action") or "events:PutEvents",
                                    conditions=conditions)
        where = "principal"
    yield from policy_violations(document, kind="resource", where=where, resource_label=label,
                                 owner_accounts=owner_accounts(ctx, params),
                                 subject=f"{label}: event bus permission at '{where}'")


CONTROL = Control(
    id="PS019-RBP-008",
    title="EventBridge bus policies grant no public or unbounded cross-account event delivery or rule changes",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A bus policy with Principal \"*\" lets any account put events on the bus (triggering every rule that "
        "matches) or manage its rules; other accounts writing to the bus should be bounded by aws:PrincipalOrgID or "
        "named."
    ),
    remediation=(
        "Name the sending accounts or bound the statement with aws:PrincipalOrgID; keep events:PutRule and "
        "events:PutTargets in the owning account."
    ),
    resource_types=tuple(DOCUMENT_PATHS) + PERMISSION_TYPES,
    config_model=CONFIG_MODEL,
    check=check,
)
