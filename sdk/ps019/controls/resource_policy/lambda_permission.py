"""PS019-RBP-006: Lambda permissions do not let everyone, or an unbounded service or account, invoke a function.

A ``aws:lambda/permission:Permission`` is one resource-policy statement written as properties; it is judged as that
statement (principal, action, ``sourceArn``/``sourceAccount``/``principalOrgId`` as conditions).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam.documents import policy_violations, resource_label
from ps019.controls.resource_policy._common import (
    CLAUSE,
    CONFIG_MODEL,
    owner_accounts,
    synthetic_policy,
)
from ps019.model import Level, ResourceView, Severity, Violation

FUNCTION_PROPERTY = {
    "aws:lambda/permission:Permission": "function",
    "aws-native:lambda:Permission": "functionName",
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    props = view.props
    principal = props.get("principal")
    if principal in (None, ""):
        return
    function = props.get(FUNCTION_PROPERTY.get(view.type, "function"))
    document = synthetic_policy(
        principal, props.get("action") or "lambda:InvokeFunction", function,
        {"ArnLike": {"aws:SourceArn": props.get("sourceArn")},
         "StringEquals": {"aws:SourceAccount": props.get("sourceAccount"),
                          "aws:PrincipalOrgID": props.get("principalOrgId")}},
    )
    label = resource_label(view)
    url = props.get("functionUrlAuthType")
    extra = " (function URL without IAM auth)" if isinstance(url, str) and url.upper() == "NONE" else ""
    yield from policy_violations(
        document, kind="resource", where="principal", resource_label=label, owner_accounts=owner_accounts(ctx, params),
        subject=f"{label}: the permission for principal {_shown(principal)}{extra}",
    )


def _shown(value: Any) -> str:
    from ps019.model import is_unknown

    return "<computed>" if is_unknown(value) else repr(str(value))


CONTROL = Control(
    id="PS019-RBP-006",
    title="Lambda permissions do not let everyone or an unbounded service invoke a function",
    clause=CLAUSE,
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale=(
        "A Lambda permission for principal '*' (or a public function URL) lets anyone invoke the function; a service "
        "principal (s3.amazonaws.com, sns.amazonaws.com, events.amazonaws.com) without sourceArn/sourceAccount lets "
        "another account's bucket, topic or rule trigger it (the confused-deputy problem)."
    ),
    remediation=(
        "Set sourceArn (the bucket, topic, rule or API that calls) and sourceAccount on service permissions; name "
        "accounts instead of '*', or set principalOrgId. A deliberately public function URL gets a recorded "
        "exception."
    ),
    resource_types=tuple(FUNCTION_PROPERTY),
    config_model=CONFIG_MODEL,
    check=check,
)
