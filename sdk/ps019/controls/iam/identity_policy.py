"""PS019-IAM-001: every IAM identity policy a change creates grants least privilege.

Covers stand-alone policies, inline policies (role/user/group) and the policies embedded in ``aws:iam/role:Role``
(``inlinePolicies``) and in the ``aws-native`` Role/User/Group (``policies``). The verdict is the IAM analysis core's
(``ps019.iam.analyze_policy``, see docs/iam.md).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ps019.controls.base import Control, RunContext
from ps019.controls.iam.documents import document_paths, policy_violations, resource_label
from ps019.model import Level, ResourceView, Severity, Violation

# resource type -> paths to identity policy documents ("*" walks a list)
DOCUMENT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "aws:iam/policy:Policy": (("policy",),),
    "aws:iam/rolePolicy:RolePolicy": (("policy",),),
    "aws:iam/userPolicy:UserPolicy": (("policy",),),
    "aws:iam/groupPolicy:GroupPolicy": (("policy",),),
    "aws:iam/role:Role": (("inlinePolicies", "*", "policy"),),
    # aws-native:iam:Policy was removed from aws-native in March 2024 (not supported by Cloud Control); older
    # programs still register it.
    "aws-native:iam:Policy": (("policyDocument",),),
    "aws-native:iam:ManagedPolicy": (("policyDocument",),),
    "aws-native:iam:RolePolicy": (("policyDocument",),),
    "aws-native:iam:UserPolicy": (("policyDocument",),),
    "aws-native:iam:GroupPolicy": (("policyDocument",),),
    "aws-native:iam:Role": (("policies", "*", "policyDocument"),),
    "aws-native:iam:User": (("policies", "*", "policyDocument"),),
    "aws-native:iam:Group": (("policies", "*", "policyDocument"),),
}


def check(view: ResourceView, ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    label = resource_label(view)
    for where, document in document_paths(view.props, DOCUMENT_PATHS.get(view.type, ())):
        yield from policy_violations(document, kind="identity", where=where, resource_label=label)


CONTROL = Control(
    id="PS019-IAM-001",
    title="IAM identity policies grant least privilege",
    clause='PS-019 §3 "Build and deployment jobs run under managed identities with least privilege"',
    severity=Severity.HIGH,
    level=Level.MANDATORY,
    rationale=(
        "An identity policy that grants all actions, a whole service, NotAction/NotResource, unscoped iam:PassRole, "
        "a privilege-escalation path, permissions management or secret reads on '*' hands out far more than the "
        "workload needs; one compromised credential then reaches the whole account."
    ),
    remediation=(
        "Grant the specific actions the workload calls, on the ARNs it uses (or bound them with a condition such as "
        "aws:ResourceTag/* or kms:ViaService). Run `ps019 iam check policy.json` locally to see every finding."
    ),
    resource_types=tuple(DOCUMENT_PATHS),
    check=check,
)
