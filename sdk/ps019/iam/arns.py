"""Pure helpers over the caller ARNs that STS GetCallerIdentity returns."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

CallerKind = Literal["root", "iam-user", "assumed-role", "role", "federated", "unknown"]

# arn:<partition>:<service>:<region>:<account>:<resource>
_ARN = re.compile(r"^arn:(?P<partition>aws[a-zA-Z-]*):(?P<service>iam|sts)::(?P<account>\d{12}):(?P<resource>.+)$")


@dataclass(frozen=True)
class CallerArn:
    kind: CallerKind
    partition: str = "aws"
    account: str = ""
    role_name: str | None = None
    session_name: str | None = None
    user_name: str | None = None

    def role_arn(self, path: str = "/") -> str | None:
        """The IAM role ARN behind an assumed-role session (STS omits the role's path; pass it when known)."""
        if not self.role_name:
            return None
        path = path if path.startswith("/") else "/" + path
        path = path if path.endswith("/") else path + "/"
        return f"arn:{self.partition}:iam::{self.account}:role{path}{self.role_name}"


def classify_caller_arn(arn: str | None) -> CallerArn:
    """Classify a GetCallerIdentity ARN.

    * ``arn:aws:iam::123456789012:root``                            -> root
    * ``arn:aws:iam::123456789012:user/path/alice``                 -> iam-user (long-lived access keys)
    * ``arn:aws:sts::123456789012:assumed-role/Deploy/session``     -> assumed-role
    * ``arn:aws:iam::123456789012:role/path/Deploy``                -> role
    * ``arn:aws:sts::123456789012:federated-user/bob``              -> federated (GetFederationToken: an IAM user's keys)
    """
    match = _ARN.match(arn or "")
    if not match:
        return CallerArn("unknown")
    partition, service, account, resource = match.group("partition", "service", "account", "resource")
    if service == "iam" and resource == "root":
        return CallerArn("root", partition, account)
    head, _, rest = resource.partition("/")
    if service == "iam" and head == "user" and rest:
        return CallerArn("iam-user", partition, account, user_name=rest.rsplit("/", 1)[-1])
    if service == "sts" and head == "assumed-role" and "/" in rest:
        role_name, _, session = rest.partition("/")
        return CallerArn("assumed-role", partition, account, role_name=role_name, session_name=session)
    if service == "iam" and head == "role" and rest:
        return CallerArn("role", partition, account, role_name=rest.rsplit("/", 1)[-1])
    if service == "sts" and head == "federated-user" and rest:
        return CallerArn("federated", partition, account, user_name=rest)
    return CallerArn("unknown", partition, account)


def role_arn_matches(role_arns: tuple[str, ...] | list[str], patterns: tuple[str, ...] | list[str]) -> str | None:
    """The first pattern that matches any of ``role_arns`` (case-sensitive, as IAM ARNs are), else None."""
    for pattern in patterns:
        for arn in role_arns:
            if arn and fnmatch.fnmatchcase(arn, pattern):
                return pattern
    return None
