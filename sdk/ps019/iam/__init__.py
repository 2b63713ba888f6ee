"""IAM policy analysis: the PS-019 verdict rule for identity and trust policies (docs/iam.md).

    >>> from ps019.iam import analyze_policy
    >>> analyze_policy('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}').verdict
    'deny'

Importing this package is cheap (no data is read); the action index loads on first use (~10 ms).
"""

from ps019.iam._data_version import IAM_DATA_VERSION
from ps019.iam.analysis import Category, IamFinding, IamResult, analyze_policy, is_admin_equivalent_managed_policy
from ps019.iam.knowledge import ADMIN_EQUIVALENT_POLICY_ARNS

__all__ = [
    "ADMIN_EQUIVALENT_POLICY_ARNS",
    "IAM_DATA_VERSION",
    "Category",
    "IamFinding",
    "IamResult",
    "analyze_policy",
    "is_admin_equivalent_managed_policy",
]
