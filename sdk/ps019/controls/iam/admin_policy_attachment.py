"""PS019-IAM-003: a change does not attach an admin-equivalent managed policy to a role, user or group.

Customer-managed policies created in the same change are analysed by PS019-IAM-001 on their own resource; this
control recognises the AWS-managed policies that amount to administrator access (AdministratorAccess, IAMFullAccess,
...: ``ps019.iam.is_admin_equivalent_managed_policy``) plus any ARNs the platform team lists in ``extraAdminPolicyArns``.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam._documents import document_paths, resource_label
from ps019.model import Level, ResourceView, Severity, Violation, is_unknown

ARN_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (("policyArn",),),
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": (("policyArn",),),
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": (("policyArn",),),
    "aws:iam/policyAttachment:PolicyAttachment": (("policyArn",),),
    "aws:iam/role:Role": (("managedPolicyArns", "*"),),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": (("policyArns", "*"),),
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": (("policyArns", "*"),),
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": (("policyArns", "*"),),
    "aws-native:iam:Role": (("managedPolicyArns", "*"),),
    "aws-native:iam:User": (("managedPolicyArns", "*"),),
    "aws-native:iam:Group": (("managedPolicyArns", "*"),),
}

# Who receives the policy, for the message: (property, noun)
_PRINCIPAL_PROPS = (("role", "role"), ("user", "user"), ("group", "group"), ("roleName", "role"),
                    ("userName", "user"), ("groupName", "group"), ("roles", "roles"), ("users", "users"),
                    ("groups", "groups"))


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    from ps019.iam import is_admin_equivalent_managed_policy

    extra = [str(p) for p in params.get("extraAdminPolicyArns") or ()]
    label = resource_label(view)
    target = _principal(view)
    for where, arn in document_paths(view.props, ARN_PATHS.get(view.type, ())):
        if arn is None or arn == "":
            continue
        if is_unknown(arn):
            yield Violation(
                f"{label}: the policy ARN at '{where}' cannot be verified until update: it is computed from another "
                "resource. ps019 checks it at update time, before the attachment is made (a policy created in this "
                "change is also analysed by PS019-IAM-001).",
                details={"unverifiable": True, "document": where},
            )
            continue
        if not isinstance(arn, str):
            yield Violation(f"{label}: '{where}' is a {type(arn).__name__}, not a policy ARN.",
                            details={"verdict": "error", "document": where, "error": "not a string"})
            continue
        listed = next((p for p in extra if fnmatch.fnmatchcase(arn, p)), None)
        if is_admin_equivalent_managed_policy(arn) or listed:
            why = "listed in extraAdminPolicyArns" if listed else "an admin-equivalent managed policy"
            yield Violation(
                f"{label} attaches {arn} ({why}) to {target} at '{where}'. Fix: attach a policy that grants only "
                "the actions and resources this principal needs; keep administrator access for a break-glass role "
                "that is not managed by application stacks.",
                details={"verdict": "deny", "document": where, "policy_arn": arn, "principal": target},
            )


def _principal(view: ResourceView) -> str:
    if view.type.endswith((":Role", "RolePolicyAttachmentsExclusive")):
        noun = "role"
    elif view.type.endswith((":User", "UserPolicyAttachmentsExclusive")):
        noun = "user"
    elif view.type.endswith((":Group", "GroupPolicyAttachmentsExclusive")):
        noun = "group"
    else:
        noun = ""
    props = view.props
    for key, key_noun in _PRINCIPAL_PROPS:
        value = props.get(key)
        if value not in (None, "", []):
            return f"{key_noun} {_printable(value)}"
    if noun:
        name = props.get("name") or props.get("roleName") or props.get("userName") or props.get("groupName")
        return f"{noun} {_printable(name) if name else repr(view.name)}"
    return "its principal"


def _printable(value: Any) -> str:
    if is_unknown(value):
        return "<computed>"
    if isinstance(value, list):
        return "[" + ", ".join(_printable(v) for v in value) + "]"
    return repr(str(value))


CONTROL = Control(
    id="PS019-IAM-003",
    title="No admin-equivalent managed policy is attached by a change",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "AdministratorAccess and its equivalents (IAMFullAccess can grant itself anything) make every workload that "
        "holds the principal an account administrator; least privilege is impossible once they are attached."
    ),
    remediation=(
        "Replace the managed policy with a customer-managed or inline policy scoped to the needed actions and ARNs "
        "(PS019-IAM-001 then checks it). Administrator access belongs to a break-glass role outside application stacks."
    ),
    resource_types=tuple(ARN_PATHS),
    config_schema={
        "extraAdminPolicyArns": {
            "type": "array", "items": {"type": "string"},
            "description": "More managed policy ARNs (glob patterns) to treat as admin-equivalent.",
        },
    },
    defaults={"extraAdminPolicyArns": []},
    check=check,
)
