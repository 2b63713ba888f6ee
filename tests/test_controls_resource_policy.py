"""Resource-policy controls (PS019-RBP-0NN): one test per fixture beside each control, the contract every control
keeps, and the joins a single fixture cannot show (S3 policy + public access block, owner from the deploy identity)."""

from __future__ import annotations

import json

import pytest

from tests.fixture_cases import load_cases
from ps019.controls.registry import all_controls
from ps019.model import UNKNOWN, ResourceView
from tests.test_controls_iam import assert_expectation

CASES = load_cases("ps019.controls.resource_policy")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fixture(case):
    assert_expectation(case)


def test_every_resource_policy_control_has_allow_and_deny_fixtures_for_each_provider():
    by_control: dict[str, set] = {}
    types_with: dict[str, set] = {}
    for case in CASES:
        by_control.setdefault(case.control.id, set()).add(case.expect)
        for view in case.views:
            types_with.setdefault(view.type.split(":")[0], set()).add((case.control.id, case.expect))
    ids = {c.id for c in all_controls() if c.id.startswith("PS019-RBP-")}
    assert ids == set(by_control) and len(ids) == 9
    for control_id, expects in by_control.items():
        assert {"allow", "deny"} <= expects, control_id
        for provider in ("aws", "aws-native"):  # every control has allow and deny fixtures for both providers
            assert (control_id, "deny") in types_with[provider] or control_id == "PS019-RBP-001", (control_id, provider)
            assert {(control_id, "allow"), (control_id, "advisory")} & types_with[provider], (control_id, provider)


def test_metadata_and_config_schema():
    for c in all_controls():
        if c.id.startswith("PS019-RBP-"):
            assert c.title and c.rationale and c.remediation and "PS-019 §3" in c.clause
            assert c.resource_types and "trustedAccountIds" in c.config_model_class().model_fields


def _control(cid):
    return next(c for c in all_controls() if c.id == cid)


def _ctx(**kw):
    from ps019.controls.base import RunContext

    return RunContext(organization="acme", project="p", stack="prod", dry_run=False, tier="production", **kw)


def _view(rtype, props, name="r", deps=()):
    return ResourceView(urn=f"urn:pulumi:prod::p::{rtype}::{name}", type=rtype, name=name, props=props,
                        dependencies=tuple(deps))


def test_cross_account_depends_on_who_owns_the_resource():
    """The same grant to account 210987654321 is cross-account for owner 123456789012, fine when the organisation
    lists it as its own, and an advisory when no owner is known."""
    control = _control("PS019-RBP-002")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "210987654321"}, "Action": "ecr:PutImage"}]})
    view = _view("aws:ecr/repositoryPolicy:RepositoryPolicy", {"repository": "app", "policy": policy})
    owner = {"arn": "arn:aws:sts::123456789012:assumed-role/deploy/ci", "account": "123456789012"}
    from ps019.iam.deploy_identity import DeployIdentity

    denied = list(control.check(view, _ctx(deploy_identity=DeployIdentity.from_mapping(owner)), control.params({})))
    assert denied and not denied[0].details.get("advisory") and "210987654321" in denied[0].message
    trusted = control.params({"trustedAccountIds": ["210987654321", "123456789012"]})
    assert list(control.check(view, _ctx(), trusted)) == []
    unknown = list(control.check(view, _ctx(), control.params({})))
    assert unknown and all(v.details.get("advisory") for v in unknown)


def test_s3_policy_public_access_block_join_is_per_bucket_and_account_block_covers_all():
    control = _control("PS019-RBP-001")
    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b1/*"}]})
    policies = [_view("aws:s3/bucketPolicy:BucketPolicy", {"bucket": n, "policy": public}, name=f"p-{n}")
                for n in ("b1", "b2")]
    block_b1 = _view("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                     {"bucket": "b1", "restrictPublicBuckets": True}, name="pab")
    out = list(control.check((*policies, block_b1), _ctx(), control.params({})))
    level = {v.urn.rsplit("::", 1)[1]: bool(v.details.get("advisory")) for v in out}
    assert level == {"p-b1": True, "p-b2": False}
    account = _view("aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock", {"restrictPublicBuckets": True})
    out = list(control.check((*policies, account), _ctx(), control.params({})))
    assert out and all(v.details.get("advisory") for v in out)


def test_unknown_values_never_pass_silently_in_any_resource_policy_control():
    for control in all_controls():
        if not control.id.startswith("PS019-RBP-") or control.scope == "stack":
            continue
        for rtype in control.resource_types:
            for prop in ("policy", "policyDocument", "keyPolicy", "repositoryPolicyText", "resourcePolicy",
                         "statement", "principal"):
                view = _view(rtype, {prop: UNKNOWN, "principal": UNKNOWN} if prop == "statement" else {prop: UNKNOWN})
                out = list(control.check(view, _ctx(), control.params({})))
                if out:
                    assert all(v.details.get("unverifiable") for v in out), (control.id, rtype, prop)
                    assert all("cannot be verified until update" in v.message for v in out)


def test_s3_policy_control_converts_only_buckets_policies_and_blocks_of_a_large_stack(monkeypatch):
    """PS019-RBP-001 is a stack control: the adapter hands it every resource of the stack, lazily. It must convert
    only the resources it reads (at 50,000 resources converting every output dominated AnalyzeStack)."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    from ps019.controls.resource_policy.s3_bucket_policy import CONTROL
    from ps019.pack import convert, servicer

    def resource(rtype: str, name: str, props: dict) -> analyzer_pb2.AnalyzerResource:
        struct = struct_pb2.Struct()
        struct.update(props)
        return analyzer_pb2.AnalyzerResource(type=rtype, urn=f"urn:pulumi:dev::p::{rtype}::{name}", name=name,
                                             properties=struct)

    public = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                      "Resource": "arn:aws:s3:::site/*"}]}
    resources = [resource("aws:ec2/instance:Instance", f"vm-{i}", {"ami": "ami-1", "tags": {"n": str(i)}})
                 for i in range(500)]
    resources.insert(250, resource("aws:s3/bucketV2:BucketV2", "site", {"bucket": "site"}))
    resources.append(resource("aws:s3/bucketPolicy:BucketPolicy", "site-policy",
                              {"bucket": "site", "policy": json.dumps(public)}))
    converted: list[str] = []
    real = convert.request_view
    monkeypatch.setattr(convert, "request_view", lambda r: converted.append(r.type) or real(r))
    views = servicer.LazyViews(resources)
    violations = list(CONTROL.check(views, _ctx(), CONTROL.params({})))
    assert sorted(converted) == ["aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketV2:BucketV2"]
    assert len(violations) == 1 and "anyone" in violations[0].message
    assert violations[0].urn.endswith("::site-policy")
    assert len(views) == 502 and list(views)[250].type == "aws:s3/bucketV2:BucketV2"  # full access still works
