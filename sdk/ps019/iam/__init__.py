"""IAM policy analysis: the PS-019 verdict rule for identity and trust policies (docs/iam.md).

    >>> from ps019.iam import analyze_policy
    >>> analyze_policy('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}').verdict
    'deny'

Importing this package is cheap (no data is read); the action index loads on first use (~10 ms), the AWS managed-policy
dataset on the first ``managed_policy(...)`` lookup (~40 ms).
"""

from ps019.iam._data_version import IAM_DATA_VERSION
from ps019.iam.analysis import Category, IamFinding, IamResult, analyze_policy, is_admin_equivalent_managed_policy
from ps019.iam.knowledge import ADMIN_EQUIVALENT_POLICY_ARNS
from ps019.iam._managed_version import MANAGED_POLICY_DATA_VERSION
from ps019.iam.managed import (
    ManagedPolicy,
    deprecated_replacement,
    is_aws_managed_arn,
    managed_policy,
    managed_policy_data_version,
    managed_policy_info,
    managed_policy_names,
)

IAM_DATA_VERSIONS = f"{IAM_DATA_VERSION}; {MANAGED_POLICY_DATA_VERSION}"
"""Both pinned data sets behind a verdict (the evidence record's ``artifact.iam_data_version``)."""

__all__ = [
    "ADMIN_EQUIVALENT_POLICY_ARNS",
    "IAM_DATA_VERSION",
    "IAM_DATA_VERSIONS",
    "MANAGED_POLICY_DATA_VERSION",
    "ManagedPolicy",
    "Category",
    "IamFinding",
    "IamResult",
    "analyze_policy",
    "deprecated_replacement",
    "is_admin_equivalent_managed_policy",
    "is_aws_managed_arn",
    "managed_policy",
    "managed_policy_data_version",
    "managed_policy_info",
    "managed_policy_names",
]
