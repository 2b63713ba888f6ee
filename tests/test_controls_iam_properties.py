"""Property-based: whatever property bag or identity the engine hands over, the IAM and identity controls answer
with well-formed violations and never raise (a raise would fail the resource closed with an internal error)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ps019.iam.deploy_identity import DeployIdentity
from ps019.controls.base import RunContext
from ps019.controls.registry import all_controls
from ps019.model import UNKNOWN, ResourceView, Violation

MINE = tuple(c for c in all_controls() if c.id.startswith(("PS019-IAM-", "PS019-IDENTITY-", "PS019-RBP-")))
TYPES = sorted({t for c in MINE for t in c.resource_types})
KEYS = sorted({
    "policy", "policyDocument", "assumeRolePolicy", "assumeRolePolicyDocument", "inlinePolicies", "policies",
    "managedPolicyArns", "policyArn", "policyArns", "role", "user", "group", "roles", "users", "groups", "roleName",
    "userName", "groupName", "name", "status", "loginProfile", "accessKey", "secretKey", "token", "assumeRoles",
    "assumeRole", "assumeRoleWithWebIdentity", "roleArn", "Version", "Statement", "Effect", "Action", "NotAction",
    "Resource", "NotResource", "Principal", "NotPrincipal", "Condition", "Sid", "AWS", "Service", "Federated",
    "keyPolicy", "repositoryPolicyText", "resourcePolicy", "statement", "principal", "action", "sourceArn",
    "sourceAccount", "principalOrgId", "function", "functionName", "bucket", "bucketName", "condition",
    "publicAccessBlockConfiguration", "restrictPublicBuckets", "blockPublicPolicy", "functionUrlAuthType",
})

scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["*", "s3:*", "iam:PassRole", "Allow", "Deny", "arn:aws:iam::aws:policy/AdministratorAccess",
                     "arn:aws:iam::123456789012:role/pulumi-deploy-x", "Inactive", "{", "[", "{}", "[]", "null"]),
    st.just(UNKNOWN),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5)),
    max_leaves=25,
)
json_texts = values.map(lambda v: json.dumps(v, default=str))
bags = st.dictionaries(st.sampled_from(KEYS), st.one_of(values, json_texts), max_size=8)
identities = st.one_of(
    st.none(),
    st.builds(lambda arn, err, perr, pols: DeployIdentity.from_mapping(
        {"arn": arn, "error": err, "policies_error": perr, "policies": pols}),
        st.one_of(st.none(), st.text(max_size=30), st.sampled_from([
            "arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:user/a",
            "arn:aws:sts::123456789012:assumed-role/r/s", "arn:aws:sts::123456789012:federated-user/b"])),
        st.one_of(st.none(), st.text(max_size=10)), st.one_of(st.none(), st.text(max_size=10)),
        st.lists(st.fixed_dictionaries({"name": st.text(max_size=5), "admin_equivalent": st.booleans()}), max_size=3)),
)
params = st.fixed_dictionaries({}, optional={
    "tiers": st.lists(st.sampled_from(["production", "staging", "development", "unknown"])),
    "allowedDeployRoles": st.dictionaries(st.sampled_from(["production", "staging"]),
                                          st.lists(st.text(max_size=15), max_size=3)),
    "extraAdminPolicyArns": st.lists(st.text(max_size=10), max_size=2),
    "allowedUserNames": st.lists(st.text(max_size=10), max_size=2),
    "trustedAccountIds": st.lists(st.sampled_from(["123456789012", "210987654321"]), max_size=2),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rtype=st.sampled_from(TYPES), props=bags, tier=st.sampled_from(["production", "staging", "unknown"]),
       dry_run=st.booleans(), identity=identities, configured=params)
def test_random_property_bags_never_crash(rtype, props, tier, dry_run, identity, configured):
    view = ResourceView(urn=f"urn:pulumi:s::p::{rtype}::r", type=rtype, name="r", props=props)
    ctx = RunContext(organization="o", project="p", stack="s", dry_run=dry_run, tier=tier, deploy_identity=identity)
    for control in MINE:
        if not control.applies_to(rtype):
            continue
        subject = (view, view) if control.scope == "stack" else view  # stack controls get every resource
        for violation in control.check(subject, ctx, control.params(configured)):
            assert isinstance(violation, Violation) and isinstance(violation.message, str) and violation.message
            json.dumps(dict(violation.details), allow_nan=True)
