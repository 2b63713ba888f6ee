"""ps019.aws.identity.lookup_deploy_identity against the moto server on 127.0.0.1 with the real boto3 client, and the
PS019-IDENTITY-003/004 verdicts on what it finds."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from ps019.aws.identity import clear_cache, lookup_deploy_identity
from ps019.aws.settings import IdentitySettings
from ps019.controls.base import RunContext
from ps019.controls.registry import get
from ps019.model import ResourceView

pytestmark = pytest.mark.moto

ACCOUNT = "123456789012"
PATTERNS = {"production": [f"arn:aws:iam::{ACCOUNT}:role/deploy/pulumi-deploy-*"]}


def settings(**over) -> IdentitySettings:
    """The lookup's endpoints come only from the pack config: here, the session's moto server
    (tests/plugins/moto_server.py publishes it as AWS_ENDPOINT_URL, which the lookup itself ignores)."""
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    return IdentitySettings(**{"allowed_deploy_roles": PATTERNS, "max_attempts": 1,
                               "endpoints": {"sts": endpoint, "iam": endpoint}, **over})

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})
SCOPED = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::acme-site/*"}]})
STACK = ResourceView(urn="urn:pulumi:prod::site::pulumi:pulumi:Stack::site-prod", type="pulumi:pulumi:Stack",
                     name="site-prod", props={})


@pytest.fixture
def aws(moto_endpoint):
    """No moto reset: loading AWS managed policies after each reset costs ~1 s, so tests use unique names instead."""
    clear_cache()
    yield boto3.session.Session(region_name="us-east-1")
    clear_cache()


def session_for(access_key, secret_key, token=None, hooks=()):
    core = botocore.session.get_session()
    for event, handler in hooks:
        core.register(event, handler)
    return boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                 aws_session_token=token, region_name="us-east-1", botocore_session=core)


def unique(name):
    return f"{name}-{uuid.uuid4().hex[:8]}"


def become_role(aws, role_name, path="/deploy/", managed=(), inline=None):
    role_name = unique(role_name)
    iam = aws.client("iam")
    role_arn = iam.create_role(RoleName=role_name, Path=path, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    for arn in managed:
        iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    if inline:
        iam.put_role_policy(RoleName=role_name, PolicyName="inline", PolicyDocument=inline)
    creds = aws.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="ci-42")["Credentials"]
    return session_for(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def verdicts(identity, tier="production"):
    ctx = RunContext(organization="acme", project="site", stack="prod", dry_run=False, tier=tier,
                     deploy_identity=identity)
    found = {}
    for control_id in ("PS019-IDENTITY-003", "PS019-IDENTITY-004"):
        control = get(control_id)
        params = control.params({"allowedDeployRoles": PATTERNS} if control_id.endswith("003") else None)
        found[control_id] = [v.message for v in control.check(STACK, ctx, params)]
    return found


def test_iam_user_caller_is_refused_for_production(aws):
    iam = aws.client("iam")
    user = unique("ci-deployer")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    identity = lookup_deploy_identity(settings(), session=session_for(key["AccessKeyId"], key["SecretAccessKey"]))
    assert identity.kind == "iam-user" and identity.error is None
    assert identity.arn == f"arn:aws:iam::{ACCOUNT}:user/{user}"
    found = verdicts(identity)
    assert len(found["PS019-IDENTITY-003"]) == 1 and "IAM user" in found["PS019-IDENTITY-003"][0]
    assert found["PS019-IDENTITY-004"] == []
    assert verdicts(identity, tier="development")["PS019-IDENTITY-003"] == []


def test_root_caller_is_refused(aws):
    """moto cannot issue root credentials: make one real STS call and let the response say what AWS says for root
    credentials (a GetCallerIdentity ARN ending in ':root')."""
    def as_root(parsed, **_):
        parsed["Arn"] = f"arn:aws:iam::{ACCOUNT}:root"
        parsed["UserId"] = ACCOUNT

    calls = []
    session = session_for("AKIAROOTEXAMPLE", "x", hooks=[
        ("after-call.sts.GetCallerIdentity", as_root),
        ("before-call.iam", lambda **kw: calls.append(kw)),
    ])
    identity = lookup_deploy_identity(settings(), session=session)
    assert (identity.kind, identity.account, identity.error) == ("root", ACCOUNT, None)
    assert calls == []  # no role: no IAM calls
    assert "root user" in verdicts(identity)["PS019-IDENTITY-003"][0]


def test_disallowed_role_is_refused(aws):
    session = become_role(aws, "AWSReservedSSO_AdministratorAccess_1f2e", path="/aws-reserved/",
                          managed=["arn:aws:iam::aws:policy/ReadOnlyAccess"])
    identity = lookup_deploy_identity(settings(), session=session)
    assert identity.kind == "assumed-role" and identity.session_name == "ci-42"
    assert identity.role_arn == f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/{identity.role_name}"
    assert identity.role_name.startswith("AWSReservedSSO_AdministratorAccess_1f2e")
    messages = verdicts(identity)["PS019-IDENTITY-003"]
    assert len(messages) == 1 and "not an allowed deploy role" in messages[0]


def test_admin_attached_deploy_role_is_refused(aws):
    session = become_role(aws, "pulumi-deploy-site", managed=["arn:aws:iam::aws:policy/AdministratorAccess"])
    identity = lookup_deploy_identity(settings(), session=session)
    assert [p.admin_equivalent for p in identity.policy_results] == [True]
    messages = verdicts(identity)["PS019-IDENTITY-003"]
    assert len(messages) == 1 and "admin-equivalent" in messages[0] and "AdministratorAccess" in messages[0]


def test_admin_inline_policy_on_deploy_role_is_refused(aws):
    star = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    identity = lookup_deploy_identity(settings(), session=become_role(aws, "pulumi-deploy-site", inline=star))
    assert [(p.source, p.admin_equivalent) for p in identity.policy_results] == [("inline", True)]
    assert "admin-equivalent" in verdicts(identity)["PS019-IDENTITY-003"][0]


def test_allowed_least_privileged_role_passes_and_is_recorded(aws):
    iam = aws.client("iam")
    policy_arn = iam.create_policy(PolicyName=unique("site-deploy"), PolicyDocument=SCOPED)["Policy"]["Arn"]
    session = become_role(aws, "pulumi-deploy-site", managed=[policy_arn], inline=SCOPED)
    identity = lookup_deploy_identity(settings(), session=session)
    assert identity.verified
    assert identity.role_arn == f"arn:aws:iam::{ACCOUNT}:role/deploy/{identity.role_name}"
    assert [(p.source, p.verdict) for p in identity.policy_results] == [("managed", "allow"), ("inline", "allow")]
    assert verdicts(identity) == {"PS019-IDENTITY-003": [], "PS019-IDENTITY-004": []}
    evidence = identity.to_evidence()
    json.dumps(evidence)
    assert evidence["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{identity.role_name}/ci-42"
    assert evidence["iam_data_version"]


def test_unreadable_role_policies_are_reported_not_raised(aws):
    def deny(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform "
                                     "iam:ListAttachedRolePolicies"}}, "ListAttachedRolePolicies")

    session = become_role(aws, "pulumi-deploy-site")
    session._session.register("before-call.iam.ListAttachedRolePolicies", deny)
    identity = lookup_deploy_identity(settings(), session=session)
    assert identity.kind == "assumed-role" and "AccessDenied" in identity.policies_error
    found = verdicts(identity)
    assert found["PS019-IDENTITY-003"] == []
    assert "could not be read" in found["PS019-IDENTITY-004"][0]


def test_lookup_is_cached_per_run(aws):
    calls = []
    iam = aws.client("iam")
    user = unique("u")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = session_for(key["AccessKeyId"], key["SecretAccessKey"],
                          hooks=[("before-call.sts.GetCallerIdentity", lambda **kw: calls.append(1))])
    first = lookup_deploy_identity(settings(), session=session)
    second = lookup_deploy_identity(settings(), session=session)
    assert first is second and len(calls) == 1


def test_dead_endpoint_costs_seconds_and_becomes_error_text(aws, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    identity = lookup_deploy_identity(IdentitySettings(connect_timeout_seconds=1, read_timeout_seconds=1,
                                                       endpoints={"sts": dead, "iam": dead}))
    assert time.monotonic() - started < 10
    assert identity.kind == "unknown" and "GetCallerIdentity failed" in identity.error
    assert "testing" not in identity.error  # never the credentials
    assert "could not be verified" in verdicts(identity)["PS019-IDENTITY-004"][0]


def test_no_credentials_becomes_error_text(moto_endpoint, monkeypatch, tmp_path):
    clear_cache()
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    identity = lookup_deploy_identity(IdentitySettings())
    assert identity.kind == "unknown" and "no AWS credentials" in identity.error
