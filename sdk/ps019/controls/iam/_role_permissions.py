"""Whether a role's own resource shows it can write: its inline policies and managed policy ARNs (AWS managed ones
judged by content from the pinned dataset). Used by PS019-IAM-002 to decide whether an OIDC trust needs a branch or
environment pin."""

from __future__ import annotations

from typing import Any

from ps019.controls.iam.documents import document_paths
from ps019.model import ResourceView, contains_unknown, is_unknown

_INLINE = {
    "aws:iam/role:Role": (("inlinePolicies", "*", "policy"),),
    "aws-native:iam:Role": (("policies", "*", "policyDocument"),),
}


def role_can_write(view: ResourceView) -> bool | None:
    """True when a visible policy of the role grants a write or permissions-management action; False when every
    policy of the role is visible here and none does (``managedPolicyArns`` is set, so no other attachment is
    expected); None when that cannot be told."""
    from ps019.iam import managed_policy
    from ps019.iam.analysis import policy_can_write

    unknown = False
    for _where, document in document_paths(view.props, _INLINE.get(view.type, ())):
        if document in (None, ""):
            continue
        if is_unknown(document) or contains_unknown(document):
            unknown = True
            continue
        verdict = policy_can_write(document)
        if verdict:
            return True
        unknown = unknown or verdict is None
    arns: Any = view.props.get("managedPolicyArns")
    if arns is None or is_unknown(arns) or not isinstance(arns, list):
        return None  # not set: attachments made by other resources may add writes
    for arn in arns:
        document = managed_policy(arn) if isinstance(arn, str) else None
        if document is None:
            unknown = True  # computed, customer-managed or not in the dataset
            continue
        if policy_can_write(document):
            return True
    return None if unknown else False
