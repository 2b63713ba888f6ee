"""Shared by the resource-policy controls: who owns the resource, and one policy document to violations.

The verdict is the IAM analysis core's ``analyze_policy(..., kind="resource")`` (docs/iam.md, "Resource policies");
the owning account is, in order: the accounts in the document's own resource ARNs, the control's
``trustedAccountIds``, and the account of the deploying identity (when the edge looked it up).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import RunContext
from ps019.controls.iam.documents import document_paths, policy_violations, resource_label
from ps019.model import ResourceView, Violation

CLAUSE = 'PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"'

CONFIG_MODEL = "ps019.controls.resource_policy.config:ResourcePolicyConfig"  # trustedAccountIds


def owner_accounts(ctx: RunContext, params: Mapping[str, Any]) -> list[str]:
    owners = [str(a) for a in params.get("trustedAccountIds") or () if a]
    account = getattr(ctx.deploy_identity, "account", None)
    if account is None and isinstance(ctx.deploy_identity, Mapping):
        account = ctx.deploy_identity.get("account")
    if isinstance(account, str) and account:
        owners.append(account)
    return owners


def check_documents(view: ResourceView, ctx: RunContext, params: Mapping[str, Any],
                    paths: Mapping[str, tuple[tuple[str, ...], ...]]) -> Iterable[Violation]:
    """Every policy document at ``paths[view.type]``, judged as a resource policy."""
    label = resource_label(view)
    owners = owner_accounts(ctx, params)
    for where, document in document_paths(view.props, paths.get(view.type, ())):
        yield from policy_violations(document, kind="resource", where=where, resource_label=label,
                                     owner_accounts=owners, subject=f"{label}: resource policy at '{where}'")


def synthetic_policy(principal: Any, action: Any, resource: Any = "*",
                     conditions: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A one-statement resource policy for resources that grant by properties instead of a document (Lambda
    permissions, EventBridge permissions). Unknown values stay unknown, so preview reports them as such."""
    from ps019.model import is_unknown

    if is_unknown(principal) or principal == "*":
        who: Any = principal
    elif isinstance(principal, str) and principal.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        who = {"Service": principal}
    else:
        who = {"AWS": principal}
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": who, "Action": action}
    if isinstance(resource, str) and resource.startswith("arn:"):
        statement["Resource"] = resource
    kept = {op: {k: v for k, v in block.items() if v not in (None, "")} for op, block in (conditions or {}).items()}
    kept = {op: block for op, block in kept.items() if block}
    if kept:
        statement["Condition"] = kept
    return {"Version": "2012-10-17", "Statement": [statement]}
