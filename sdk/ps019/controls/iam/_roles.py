"""Joining an attachment with the role (and customer-managed policy) it names, from the resources analysed earlier in
the same pass (``RunContext.seen``).

The engine registers a resource only after everything it depends on, so an attachment written as
``aws.iam.RolePolicyAttachment(role=role.name, ...)`` is analysed after its role. The join is by the role's name (or
the name inside a role ARN), case-insensitively as IAM compares names, and only with a role of the same provider: a
role of another provider may be another account's. Ambiguous or missing matches are reported as such, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from ps019.controls.base import RunContext
from ps019.model import ResourceView, contains_unknown, is_unknown

ROLE_TYPES = ("aws:iam/role:Role", "aws-native:iam:Role")
CUSTOMER_POLICY_TYPES = ("aws:iam/policy:Policy", "aws-native:iam:ManagedPolicy")

TRUST_PROP = {"aws:iam/role:Role": "assumeRolePolicy", "aws-native:iam:Role": "assumeRolePolicyDocument"}
_ROLE_NAME_PROP = {"aws:iam/role:Role": "name", "aws-native:iam:Role": "roleName"}
_POLICY_PROPS = {"aws:iam/policy:Policy": ("name", "path", "policy"),
                 "aws-native:iam:ManagedPolicy": ("managedPolicyName", "path", "policyDocument")}

# Resources that attach permissions to roles: type -> (property naming the role(s), whether it is a list)
ROLE_REFERENCES = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", False),
    "aws:iam/rolePolicy:RolePolicy": ("role", False),
    "aws:iam/policyAttachment:PolicyAttachment": ("roles", True),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("roleName", False),
    "aws-native:iam:RolePolicy": ("roleName", False),
    "aws-native:iam:ManagedPolicy": ("roles", True),
    "aws-native:iam:Policy": ("roles", True),
}
# Other principals the same resources can attach to (then the policy does not reach only roles)
OTHER_PRINCIPALS = {
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": ("user",),
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": ("group",),
    "aws:iam/policyAttachment:PolicyAttachment": ("users", "groups"),
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": ("userName",),
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": ("groupName",),
    "aws-native:iam:User": ("userName",),
    "aws-native:iam:Group": ("groupName",),
    "aws-native:iam:ManagedPolicy": ("users", "groups"),
    "aws-native:iam:Policy": ("users", "groups"),
}


@dataclass(frozen=True)
class RoleRef:
    """One role an attachment names: the role's view when it was joined, else why not (``problem``)."""

    written: Any  # as the attachment names it (a name, an ARN, or UNKNOWN)
    view: ResourceView | None = None
    problem: str = ""
    unknown: bool = False  # the reference is computed (preview): it can be joined at update

    @property
    def label(self) -> str:
        if self.view is not None:
            return f"role {self.view.name!r}"
        return "role <computed>" if self.unknown else f"role {str(self.written)!r}"


def _name_of(value: str) -> str:
    """``my-role``, or the name in ``arn:aws:iam::123456789012:role/path/my-role``."""
    if value.startswith("arn:") and ":role/" in value:
        return value.rsplit("/", 1)[-1]
    return value


def _same_provider(a: ResourceView, b: ResourceView) -> bool:
    if a.provider is None or b.provider is None:
        return True
    return a.provider.urn == b.provider.urn


def find_role(ctx: RunContext, view: ResourceView, written: Any) -> RoleRef:
    if is_unknown(written):
        return RoleRef(written, problem="the role is computed from another resource (known at update)", unknown=True)
    if not isinstance(written, str) or not written:
        return RoleRef(written, problem=f"the role reference is a {type(written).__name__}, not a role name")
    seen = getattr(ctx, "seen", None)
    if seen is None:
        return RoleRef(written, problem="the stack's roles are not visible to this check")
    name = _name_of(written).lower()
    matches = [r for r in seen.of_type(*ROLE_TYPES)
               if isinstance(r.props.get(_ROLE_NAME_PROP[r.type]), str)
               and r.props[_ROLE_NAME_PROP[r.type]].lower() == name and _same_provider(r, view)]
    if not matches:
        return RoleRef(written, problem="no role of that name is created (and analysed before this resource) in "
                                        "this stack, so its trust policy cannot be read")
    if len(matches) > 1:
        return RoleRef(written, problem="several roles of this stack have that name")
    return RoleRef(written, view=matches[0])


def attached_roles(view: ResourceView, ctx: RunContext) -> list[RoleRef]:
    """Every role ``view`` attaches permissions to (a role resource: itself)."""
    if view.type in ROLE_TYPES:
        return [RoleRef(view.name, view=view)]
    spec = ROLE_REFERENCES.get(view.type)
    if spec is None:
        return []
    prop, is_list = spec
    value = view.props.get(prop)
    if value in (None, "", []):
        return []
    if is_list:
        if is_unknown(value) or not isinstance(value, list):
            return [find_role(ctx, view, value)]
        return [find_role(ctx, view, v) for v in value]
    return [find_role(ctx, view, value)]


def other_principals(view: ResourceView) -> list[str]:
    """Users and groups ``view`` also attaches to, as ``user 'x'`` (they are never a service's role)."""
    out = []
    for prop in OTHER_PRINCIPALS.get(view.type, ()):
        value = view.props.get(prop)
        values = value if isinstance(value, list) else [value]
        noun = "group" if "group" in prop.lower() else "user"
        out.extend(f"{noun} {'<computed>' if is_unknown(v) else repr(v)}" for v in values if v not in (None, ""))
    if view.type in ("aws-native:iam:User", "aws-native:iam:Group"):
        out = out or [f"{view.type.rsplit(':', 1)[-1].lower()} {view.name!r}"]
    return out


def role_trust(role: ResourceView) -> tuple[str, Any]:
    """(property name, trust document as the role carries it; may be UNKNOWN or partly unknown)."""
    prop = TRUST_PROP[role.type]
    return prop, role.props.get(prop)


def trust_known(document: Any) -> bool:
    return document not in (None, "") and not is_unknown(document) and not contains_unknown(document)


def customer_policy(ctx: RunContext, view: ResourceView, arn: str) -> tuple[Any, str] | None:
    """The document of the customer-managed policy ``arn`` when this stack creates it (joined by path and name), as
    (document, policy name); None when it is not found."""
    seen = getattr(ctx, "seen", None)
    if seen is None or ":policy/" not in arn:
        return None
    wanted = "/" + arn.split(":policy/", 1)[1].lower()
    found = []
    for p in seen.of_type(*CUSTOMER_POLICY_TYPES):
        name_prop, path_prop, doc_prop = _POLICY_PROPS[p.type]
        name, path = p.props.get(name_prop), p.props.get(path_prop) or "/"
        if isinstance(name, str) and isinstance(path, str) and _same_provider(p, view):
            if (path.rstrip("/") + "/" + name).lower() == wanted:
                found.append((p.props.get(doc_prop), name))
    return found[0] if len(found) == 1 else None


def names(refs: Iterable[RoleRef]) -> str:
    return ", ".join(r.label for r in refs)
