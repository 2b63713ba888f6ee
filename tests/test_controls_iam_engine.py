"""The bundled pack through the engine stand-in: an over-privileged role is reported in preview and blocks the update
at the role itself, before the engine would create it (nothing registered after it is analyzed)."""

from __future__ import annotations

import json

import pytest

from ps019.engine import EngineResource, Secret, StackRef, run_pass, unknown
from ps019.engine.resources import make_urn

STACK = StackRef.parse("acme/site/dev")
ADMIN_INLINE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"}]})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
IAM_IDS = {"PS019-IAM-001", "PS019-IAM-002", "PS019-IAM-003", "PS019-IAM-004", "PS019-IAM-005"}


def urn(rtype, name):
    return make_urn(STACK.stack, STACK.project, rtype, name)


PROVIDER = urn("pulumi:providers:aws", "default_7_51_1")


def resources(inline_policy):
    return [
        EngineResource(urn=STACK.root_urn, type="pulumi:pulumi:Stack", custom=False),
        EngineResource(urn=PROVIDER, type="pulumi:providers:aws", inputs={"region": "us-east-1", "version": "7.51.1"},
                       id="prov-1"),
        EngineResource(urn=urn("aws:iam/role:Role", "app-role"), type="aws:iam/role:Role", provider=PROVIDER,
                       inputs={"name": "app-role", "assumeRolePolicy": TRUST,
                               "inlinePolicies": [{"name": "app", "policy": inline_policy}]}),
        EngineResource(urn=urn("aws:s3/bucket:Bucket", "site"), type="aws:s3/bucket:Bucket", provider=PROVIDER,
                       inputs={"bucket": "acme-site"}),
    ]


@pytest.fixture
def pack_config(tmp_path):
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps({"ps019-settings": {"identity": {"lookup": "off"}}}))
    return path


def iam_diagnostics(result):
    return [d for d in result.diagnostics if d.policy_name in IAM_IDS]


def test_over_privileged_role_reported_in_preview_and_blocked_at_update(ps019_pack, pack_pool, pack_config):
    role_urn = urn("aws:iam/role:Role", "app-role")

    preview = run_pass(ps019_pack, resources(ADMIN_INLINE), stack=STACK, dry_run=True,
                       policy_pack_config=pack_config, pool=pack_pool)
    (found,) = iam_diagnostics(preview)
    assert (found.policy_name, found.urn, found.mandatory) == ("PS019-IAM-001", role_urn, True)
    assert "inlinePolicies[0].policy" in found.message and "Everything" in found.message
    assert preview.failed and len(preview.analyzed_urns) == 4  # a preview reports everything, then fails

    update = run_pass(ps019_pack, resources(ADMIN_INLINE), stack=STACK, dry_run=False,
                      policy_pack_config=pack_config, pool=pack_pool)
    assert update.blocked_at == role_urn  # the engine bails here: no Create for the role
    assert urn("aws:s3/bucket:Bucket", "site") not in update.analyzed_urns
    assert [d.policy_name for d in iam_diagnostics(update) if d.mandatory] == ["PS019-IAM-001"]


def test_policy_unknown_in_preview_is_advisory_then_checked_in_full_at_update(ps019_pack, pack_pool, pack_config):
    role_urn = urn("aws:iam/role:Role", "app-role")
    preview = run_pass(ps019_pack, resources(unknown()), stack=STACK, dry_run=True,
                       policy_pack_config=pack_config, pool=pack_pool)
    (found,) = iam_diagnostics(preview)
    assert found.urn == role_urn and not found.mandatory
    assert "cannot be verified until update" in found.message

    update = run_pass(ps019_pack, resources(ADMIN_INLINE), stack=STACK, dry_run=False,
                      policy_pack_config=pack_config, pool=pack_pool)
    assert update.blocked_at == role_urn


def test_least_privileged_role_passes_and_static_provider_keys_never_leak(ps019_pack, pack_pool, pack_config):
    scoped = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::acme-site/*"}]})
    bag = resources(scoped)
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    bag[1] = EngineResource(urn=PROVIDER, type="pulumi:providers:aws", id="prov-1",
                            inputs={"region": "us-east-1", "accessKey": "AKIAEXAMPLE", "secretKey": Secret(secret)})
    result = run_pass(ps019_pack, bag, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    assert iam_diagnostics(result) == []
    assert all(secret not in d.message for d in result.diagnostics)


def test_static_provider_keys_on_production_are_reported_without_echoing_them(ps019_pack, pack_pool, pack_config):
    prod = StackRef.parse("acme/site/prod")
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    provider = make_urn(prod.stack, prod.project, "pulumi:providers:aws", "default_7_51_1")
    bag = [
        EngineResource(urn=prod.root_urn, type="pulumi:pulumi:Stack", custom=False),
        EngineResource(urn=provider, type="pulumi:providers:aws", id="prov-1",
                       inputs={"region": "us-east-1", "accessKey": "AKIAEXAMPLE", "secretKey": Secret(secret)}),
    ]
    preview = run_pass(ps019_pack, bag, stack=prod, dry_run=True, policy_pack_config=pack_config, pool=pack_pool)
    found = [d for d in preview.diagnostics if d.policy_name == "PS019-IDENTITY-001"]
    assert [(d.urn, d.mandatory) for d in found] == [(provider, True)]
    assert "accessKey" in found[0].message
    assert all(secret not in d.message and "AKIAEXAMPLE" not in d.message for d in preview.diagnostics)


def _role_and_attachment(trust: dict, policy_arn: str, role_ref=None):
    role_urn = urn("aws:iam/role:Role", "cluster-role")
    attach_urn = urn("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "cluster-policy")
    return role_urn, attach_urn, [
        EngineResource(urn=STACK.root_urn, type="pulumi:pulumi:Stack", custom=False),
        EngineResource(urn=PROVIDER, type="pulumi:providers:aws", inputs={"region": "us-east-1", "version": "7.51.1"},
                       id="prov-1"),
        EngineResource(urn=role_urn, type="aws:iam/role:Role", provider=PROVIDER,
                       inputs={"name": "cluster-role-1a2b3c4", "assumeRolePolicy": json.dumps(trust)}),
        EngineResource(urn=attach_urn, type="aws:iam/rolePolicyAttachment:RolePolicyAttachment", provider=PROVIDER,
                       inputs={"role": "cluster-role-1a2b3c4" if role_ref is None else role_ref,
                               "policyArn": policy_arn},
                       dependencies=[role_urn]),
        EngineResource(urn=urn("aws:s3/bucket:Bucket", "site"), type="aws:s3/bucket:Bucket", provider=PROVIDER,
                       inputs={"bucket": "acme-site"}),
    ]


EKS_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
EKS_POLICY = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"


def test_eks_cluster_policy_attached_separately_passes_on_the_eks_role_and_blocks_on_a_human_role(
        ps019_pack, pack_pool, pack_config):
    """The pack joins the attachment with the role analysed before it in the same pass: AWS's cluster policy on a
    role only EKS can assume is an advisory; on a role the account's principals can assume it blocks the update at
    the attachment, before it is made."""
    _, attach_urn, bag = _role_and_attachment(EKS_TRUST, EKS_POLICY)
    update = run_pass(ps019_pack, bag, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    assert update.blocked_at is None
    (advisory,) = [d for d in iam_diagnostics(update) if d.urn == attach_urn]
    assert not advisory.mandatory and "only eks.amazonaws.com can assume" in advisory.message

    human = {"Version": "2012-10-17", "Statement": [*EKS_TRUST["Statement"], {
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}
    _, attach_urn, bag = _role_and_attachment(human, EKS_POLICY)
    update = run_pass(ps019_pack, bag, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    assert update.blocked_at == attach_urn
    assert "also admits AWS 'arn:aws:iam::123456789012:root'" in iam_diagnostics(update)[-1].message

    # Preview with the role given by its computed id: not yet known which role, so reported, not blocked.
    _, attach_urn, bag = _role_and_attachment(human, EKS_POLICY, role_ref=unknown())
    preview = run_pass(ps019_pack, bag, stack=STACK, dry_run=True, policy_pack_config=pack_config, pool=pack_pool)
    found = [d for d in iam_diagnostics(preview) if d.urn == attach_urn]
    assert found and not any(d.mandatory for d in found) and "cannot be verified until update" in found[0].message


def test_attachment_that_makes_an_unpinned_github_role_write_is_blocked_at_the_attachment(
        ps019_pack, pack_pool, pack_config):
    github = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
        "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/site:*"}}}]}
    role_urn, attach_urn, bag = _role_and_attachment(github, "arn:aws:iam::aws:policy/AmazonS3FullAccess")
    update = run_pass(ps019_pack, bag, stack=STACK, dry_run=False, policy_pack_config=pack_config, pool=pack_pool)
    on_role = [d for d in iam_diagnostics(update) if d.urn == role_urn]
    assert on_role and not any(d.mandatory for d in on_role)  # the role alone: its permissions are not visible
    assert update.blocked_at == attach_urn
    trust = [d for d in iam_diagnostics(update) if d.urn == attach_urn and d.policy_name == "PS019-IAM-002"]
    assert trust and trust[0].mandatory and "lets role 'cluster-role' write" in trust[0].message
