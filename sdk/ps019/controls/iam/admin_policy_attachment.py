"""PS019-IAM-003: every AWS managed policy a change attaches grants least privilege, judged by its content.

An AWS managed policy reaches a role, user or group through an attachment resource (``policyArn``), a
``managedPolicyArns`` list, an exclusive-attachments resource, or an ARN that came from ``aws.iam.get_policy``; each
is judged by the same verdict rule as an inline document (``ps019.iam.analyze_policy``) on the policy's default
version from the pinned dataset (``ps019.iam.managed_policy``, version ``MANAGED_POLICY_DATA_VERSION``). An AWS
managed ARN missing from the dataset gets an advisory naming it. Customer-managed policies created in the same change
are analysed by PS019-IAM-001 on their own resource; ``extraAdminPolicyArns`` names customer-managed ARNs the platform
team treats as admin-equivalent.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam._roles import ROLE_TYPES, attached_roles, other_principals, role_trust, trust_known
from ps019.controls.iam.documents import document_paths, policy_violations, resource_label
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
    from ps019.iam import MANAGED_POLICY_DATA_VERSION, is_admin_equivalent_managed_policy, is_aws_managed_arn
    from ps019.iam import deprecated_replacement, managed_policy_info

    extra = [str(p) for p in params.get("extraAdminPolicyArns") or ()]
    label = resource_label(view)
    target = _principal(view)
    data = {"managed_policy_data_version": MANAGED_POLICY_DATA_VERSION}
    for where, arn in document_paths(view.props, ARN_PATHS.get(view.type, ())):
        if arn is None or arn == "":
            continue
        if is_unknown(arn):
            yield Violation(
                f"{label}: the policy ARN at '{where}' cannot be verified until update: it is computed from another "
                "resource, so which policy is attached (and what it grants) cannot be seen in preview. Under "
                "`pulumi up` the update pass checks it before the attachment is made; offline the update sees a "
                "stand-in ARN in the stack's own account, which is never an AWS managed policy (a policy created in "
                "this change is also analysed by PS019-IAM-001).",
                details={**data, "unverifiable": True, "document": where},
            )
            continue
        if not isinstance(arn, str):
            yield Violation(f"{label}: '{where}' cannot be verified: it is a {type(arn).__name__}, not a policy ARN.",
                            details={**data, "verdict": "error", "document": where, "error": "not a string"})
            continue
        listed = next((p for p in extra if fnmatch.fnmatchcase(arn, p)), None)
        if listed:
            yield Violation(
                f"{label} attaches {arn} (listed in extraAdminPolicyArns) to {target} at '{where}'. Fix: attach a "
                "policy that grants only the actions and resources this principal needs; keep administrator access "
                "for a break-glass role that is not managed by application stacks.",
                details={**data, "verdict": "deny", "document": where, "policy_arn": arn, "principal": target},
            )
            continue
        if not is_aws_managed_arn(arn):
            continue  # customer-managed: PS019-IAM-001 judges it where it is written
        info = managed_policy_info(arn)
        replaced = deprecated_replacement(arn) if info is None else None
        if replaced is not None:
            subject = (f"{label} attaches deprecated AWS managed policy {arn.rsplit('/', 1)[-1]} ({arn}; AWS no "
                       f"longer lets it be attached to new identities, judged by its replacement {replaced.name} "
                       f"{replaced.default_version_id}) to {target} at '{where}'; the policy")
            for v in policy_violations(replaced.document, kind="identity", where=where, resource_label=label,
                                       subject=subject):
                yield Violation(v.message + f" (managed-policy data {MANAGED_POLICY_DATA_VERSION})",
                                details={**v.details, **data, "policy_arn": arn, "managed_policy": replaced.name,
                                         "deprecated": True, "principal": target})
            continue
        if info is None:
            if is_admin_equivalent_managed_policy(arn):
                yield Violation(
                    f"{label} attaches {arn} (an admin-equivalent managed policy) to {target} at '{where}'. Fix: "
                    "attach a policy that grants only the actions and resources this principal needs.",
                    details={**data, "verdict": "deny", "document": where, "policy_arn": arn, "principal": target},
                )
                continue
            yield Violation(
                f"{label} attaches {arn} to {target} at '{where}': this AWS managed policy is not in ps019's "
                f"managed-policy data ({MANAGED_POLICY_DATA_VERSION}), so what it grants cannot be verified. Fix: "
                "check the ARN's spelling; if AWS published it recently, review its content by hand and upgrade "
                "ps019.",
                details={**data, "advisory": True, "verdict": "unknown-managed-policy", "document": where,
                         "policy_arn": arn, "principal": target},
            )
            continue
        subject = (f"{label} attaches AWS managed policy {info.name} ({info.arn}, default version "
                   f"{info.default_version_id}) to {target} at '{where}'")
        judged = _service_access(view, ctx, info.name, params)
        tolerate = None
        if judged.design is not None and judged.ok:
            subject += (f", a role only {judged.admitted} can assume: AWS designed the policy for that service "
                        f"({judged.design.describe()}), so its operational grants are reported, not blocked")
            tolerate = judged.design.tolerated_reason
        elif judged.design is not None and judged.reason and not judged.unknown:
            subject += (f" (AWS designed it for a role only {judged.design.describe()} can assume, but "
                        f"{judged.reason}, so it is judged like any document)")
        elif judged.design is not None and judged.unknown:
            # The role (or its trust) is computed in preview: whether only the service can assume it is known at
            # update, which then judges it; until then a denial is reported as not yet verifiable.
            subject += (f" cannot be verified until update: AWS designed {info.name} for a role only "
                        f"{judged.design.describe()} can assume, and {judged.reason}; judged like any document,")
        elif judged.design is None and info.path == "/service-role/":
            subject += (" (a service-role policy whose intended service ps019 does not know; if the role is that "
                        "service's, name the service in this control's servicePolicyPrincipals)")
        extra = {"service_design": judged.details()} if judged.design is not None else {}
        for v in policy_violations(info.document, kind="identity", where=where, resource_label=label,
                                   subject=subject + (" the policy" if judged.unknown else "; the policy"),
                                   tolerate=tolerate):
            details = {**v.details, **data, **extra, "policy_arn": arn, "managed_policy": info.name,
                       "managed_policy_version": info.default_version_id, "principal": target}
            if judged.unknown and not judged.ok:
                details["unverifiable"] = True
            yield Violation(v.message + f" (managed-policy data {MANAGED_POLICY_DATA_VERSION})", details=details)


@dataclass(frozen=True)
class _ServiceAccess:
    """Whether an AWS managed policy designed for a service reaches only that service's role here."""

    design: Any = None  # ps019.iam.service_roles.ServiceDesign, or None when the policy is not designed for one
    ok: bool = False
    admitted: str = ""
    reason: str = ""  # why not (or, with unknown, what is not known yet)
    unknown: bool = False

    def details(self) -> dict[str, Any]:
        return {"policy": self.design.policy, "designed_for": list(self.design.principals),
                "holder": self.design.holder, "configured": self.design.configured, "applies": self.ok,
                **({"admitted": self.admitted} if self.ok else {"reason": self.reason})}


def _service_access(view: ResourceView, ctx: RunContext, policy_name: str,
                    params: Mapping[str, Any]) -> _ServiceAccess:
    from ps019.iam.service_roles import service_design, trust_admits_only

    extra = params.get("servicePolicyPrincipals") or {}
    design = service_design(policy_name, extra if isinstance(extra, Mapping) else {})
    if design is None:
        return _ServiceAccess()
    others = other_principals(view)
    if others:
        return _ServiceAccess(design, reason=f"it is also attached to {', '.join(others)}")
    refs = attached_roles(view, ctx)
    if not refs:
        return _ServiceAccess(design, reason="the role it is attached to is not named here")
    admitted: list[str] = []
    for ref in refs:
        if ref.view is None:
            return _ServiceAccess(design, reason=f"{ref.label}: {ref.problem}", unknown=ref.unknown)
        prop, trust = role_trust(ref.view)
        if not trust_known(trust):
            return _ServiceAccess(design, unknown=trust not in (None, ""),
                                  reason=f"the trust policy of {ref.label} ('{prop}') is " +
                                  ("computed from other resources" if trust not in (None, "") else "not set"))
        match = trust_admits_only(design, trust)
        if not match.ok:
            return _ServiceAccess(design, reason=f"{ref.label}: {match.reason}")
        admitted.extend(m for m in match.admitted if m not in admitted)
    return _ServiceAccess(design, ok=True, admitted=" or ".join(admitted))


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
    title="Attached AWS managed policies grant least privilege (judged by content)",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    rationale=(
        "An AWS managed policy is a policy document like any other: AmazonS3FullAccess, PowerUserAccess or "
        "AWSLambda_FullAccess grant whole-service wildcards, AdministratorAccess everything. The verdict must not "
        "depend on how a policy reaches an identity, so each attached AWS managed policy is judged by its content "
        "(pinned dataset of default versions) with the same rule as an inline document."
    ),
    remediation=(
        "Replace the managed policy with a customer-managed or inline policy scoped to the needed actions and ARNs "
        "(PS019-IAM-001 then checks it); `ps019 iam check` on the policy's document shows every finding. "
        "Administrator access belongs to a break-glass role outside application stacks."
    ),
    resource_types=tuple(ARN_PATHS),
    config_model="ps019.controls.iam.config:AdminPolicyAttachmentConfig",
    joins=ROLE_TYPES,
    check=check,
)
