"""PS019-RBP-001: S3 bucket policies, read together with the bucket's public access block.

A stack-scope control: it sees every bucket policy and every public access block of the stack (and an account-wide
one), joins them by bucket (the policy's and the block's ``bucket`` property, or, while that is unknown in preview,
the bucket resource both depend on), and judges each policy as a resource policy:

* a public grant on a bucket whose block sets ``restrictPublicBuckets`` is reduced by S3 to AWS services and the
  owning account: advisory; with ``blockPublicPolicy`` S3 refuses the policy outright: still reported, so the preview
  says why the update would fail;
* anything else public, and writes or policy changes granted to other accounts: mandatory.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ps019.controls.base import Control, RunContext, views_of_type
from ps019.controls.iam.documents import policy_violations, resource_label
from ps019.controls.resource_policy._common import CLAUSE, CONFIG_MODEL, owner_accounts
from ps019.model import Level, ResourceView, Severity, Violation, is_unknown

# type -> (bucket-name property, policy property)
POLICY_TYPES = {
    "aws:s3/bucketPolicy:BucketPolicy": ("bucket", "policy"),
    "aws:s3/bucket:Bucket": ("bucket", "policy"),
    "aws:s3/bucketV2:BucketV2": ("bucket", "policy"),
    "aws-native:s3:BucketPolicy": ("bucket", "policyDocument"),
}
BLOCK_TYPES = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "bucket",
    "aws-native:s3:Bucket": "bucketName",  # publicAccessBlockConfiguration inside the bucket
}
ACCOUNT_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws-native:s3:Bucket")
_NAME_PROPS = {"aws:s3/bucket:Bucket": "bucket", "aws:s3/bucketV2:BucketV2": "bucket",
               "aws-native:s3:Bucket": "bucketName"}


def _flags(view: ResourceView) -> dict[str, bool]:
    props = view.props
    if view.type == "aws-native:s3:Bucket":
        props = props.get("publicAccessBlockConfiguration") or {}
        if not isinstance(props, Mapping):
            return {}
    return {k: props.get(k) is True for k in ("blockPublicPolicy", "restrictPublicBuckets")}


def _bucket_key(view: ResourceView, name_prop: str, by_name: Mapping[str, str], buckets: set[str]) -> str | None:
    """The bucket's URN when the stack creates it, else its name; None when neither can be told."""
    if view.type in BUCKET_TYPES:
        return view.urn
    name = view.props.get(name_prop)
    if isinstance(name, str) and name:
        return by_name.get(name, f"name:{name}")
    for dep in view.dependencies:
        if dep in buckets:
            return dep
    return None


def check(resources: Sequence[ResourceView], ctx: RunContext, params: Mapping[str, Any]) -> Iterable[Violation]:
    # Only buckets, bucket policies and public access blocks are read (and, by the adapter, converted).
    resources = views_of_type(resources, (*POLICY_TYPES, *BLOCK_TYPES, ACCOUNT_BLOCK, *BUCKET_TYPES))
    buckets = {r.urn for r in resources if r.type in BUCKET_TYPES}
    by_name = {r.props.get(_NAME_PROPS[r.type]): r.urn for r in resources
               if r.type in BUCKET_TYPES and isinstance(r.props.get(_NAME_PROPS[r.type]), str)}
    account = {"blockPublicPolicy": False, "restrictPublicBuckets": False}
    blocks: dict[str, dict[str, bool]] = {}
    for r in resources:
        if r.type == ACCOUNT_BLOCK:
            for k, v in _flags(r).items():
                account[k] = account[k] or v
        elif r.type in BLOCK_TYPES:
            key = _bucket_key(r, BLOCK_TYPES[r.type], by_name, buckets) if r.type != "aws-native:s3:Bucket" else r.urn
            if key is not None:
                merged = blocks.setdefault(key, {"blockPublicPolicy": False, "restrictPublicBuckets": False})
                for k, v in _flags(r).items():
                    merged[k] = merged[k] or v
    owners = owner_accounts(ctx, params)
    for r in resources:
        if r.type not in POLICY_TYPES:
            continue
        name_prop, policy_prop = POLICY_TYPES[r.type]
        document = r.props.get(policy_prop)
        if document in (None, ""):
            continue
        key = _bucket_key(r, name_prop, by_name, buckets)
        block = {k: account[k] or (blocks.get(key, {}).get(k, False) if key else False) for k in account}
        downgrade = None
        if block["restrictPublicBuckets"]:
            downgrade = {"public-access": "the bucket's public access block sets RestrictPublicBuckets, so S3 limits "
                                          "this grant to AWS services and the owning account"}
        label = resource_label(r)
        bucket = r.props.get(name_prop)
        shown = "<computed>" if is_unknown(bucket) else repr(bucket) if bucket else repr(r.name)
        for v in policy_violations(document, kind="resource", where=policy_prop, resource_label=label,
                                   owner_accounts=owners, downgrade=downgrade,
                                   subject=f"{label}: bucket policy of {shown} at '{policy_prop}'"):
            if block["blockPublicPolicy"] and not v.details.get("advisory") and _public(v):
                v = Violation(v.message + " S3 will also refuse this policy: the bucket's public access block sets "
                              "BlockPublicPolicy, so the update would fail at this resource.",
                              urn=r.urn, details={**v.details, "block_public_policy": True})
            yield Violation(v.message, urn=r.urn, details={**v.details, "public_access_block": block})


def _public(v: Violation) -> bool:
    return any(f.get("category") == "public-access" for f in v.details.get("findings", ()))


CONTROL = Control(
    id="PS019-RBP-001",
    title="S3 bucket policies grant no unbounded public or cross-account access (read with the public access block)",
    clause=CLAUSE,
    severity=Severity.CRITICAL,
    level=Level.MANDATORY,
    scope="stack",
    rationale=(
        "A bucket policy with Principal '*' and no fixed source (aws:SourceArn, aws:SourceVpce, a narrow "
        "aws:SourceIp, aws:PrincipalOrgID) publishes the bucket's data, or lets anyone overwrite it; another account "
        "with write or policy access can do the same. The bucket's public access block decides whether S3 honours "
        "a public policy, so both are read together."
    ),
    remediation=(
        "Serve public content through CloudFront with origin access control (Principal cloudfront.amazonaws.com "
        "plus aws:SourceArn of the distribution); bound other statements with aws:PrincipalOrgID or "
        "aws:SourceVpce; set a public access block with RestrictPublicBuckets and BlockPublicPolicy."
    ),
    resource_types=tuple(POLICY_TYPES) + tuple(BLOCK_TYPES) + (ACCOUNT_BLOCK,),
    config_model=CONFIG_MODEL,
    check=check,
)
