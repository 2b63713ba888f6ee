"""PS019-RBP-009: API Gateway REST API policies do not open the API to everyone without a bound."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, check_documents
from ps019.model import Level, ResourceView, Severity, Violation

DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:apigateway/restApiPolicy:RestApiPolicy": (("policy",),),
    "aws:apigateway/restApi:RestApi": (("policy",),),
    "aws-native:apigateway:RestApi": (("policy",),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    yield from check_documents(view, ctx, params, DOCUMENT_PATHS)


CONTROL = Control(
    id="PS019-RBP-009",
    title="API Gateway REST API policies do not open the API to everyone without a bound",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "A REST API resource policy that allows execute-api:Invoke to \"*\" without a source VPC endpoint, source IP "
        "range or organisation bound makes a private or internal API callable from anywhere; execute-api:ManageConnections "
        "or other accounts' invoke rights extend the same reach."
    ),
    remediation=(
        "Bound the Allow with aws:SourceVpce / aws:SourceIp (narrow range) / aws:PrincipalOrgID, or add a Deny for "
        "requests that do not match (\"StringNotEquals\": {\"aws:SourceVpce\": ...}); a deliberately public API gets a "
        "recorded exception."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    config_model=CONFIG_MODEL,
    check=check,
)
