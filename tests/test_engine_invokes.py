"""Offline answers to provider functions: aws.iam.getPolicyDocument exactly as the provider computes it (expected JSON
from the provider's documentation and its policy model), managed policies from the pinned dataset, supplied answers."""

from __future__ import annotations

import json

import pytest

from ps019.engine.invokes import (
    PolicyDocumentError,
    load_invoke_results,
    managed_policy_lookup,
    policy_document,
    supplied_result,
)
from ps019.errors import InputError


def test_registry_example_renders_as_the_provider_documents():
    # The getPolicyDocument "Basic Example" of the Pulumi registry / Terraform docs (two statements, a condition
    # with two values and a variable written with &{...}).
    result = policy_document({"statements": [
        {"sid": "1", "actions": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"],
         "resources": ["arn:aws:s3:::*"]},
        {"actions": ["s3:ListBucket"], "resources": ["arn:aws:s3:::mybucket"],
         "conditions": [{"test": "StringLike", "variable": "s3:prefix",
                         "values": ["", "home/", "home/&{aws:username}/"]}]},
    ]})
    assert json.loads(result["json"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "1", "Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:GetBucketLocation"],
             "Resource": "arn:aws:s3:::*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::mybucket",
             "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/"]}}},
        ],
    }
    # Two-space indent, the statement keys in the provider's order, sets reverse-sorted.
    assert result["json"].startswith('{\n  "Version": "2012-10-17",\n  "Statement": [\n    {\n      "Sid": "1",')
    assert result["minifiedJson"] == json.dumps(json.loads(result["json"]), separators=(",", ":"))
    assert result["id"].isdigit()


def test_principals_merge_by_type_and_wildcard_principal_is_a_bare_star():
    doc = json.loads(policy_document({"statements": [
        {"actions": ["sts:AssumeRoleWithWebIdentity"],
         "principals": [{"type": "Federated",
                         "identifiers": ["arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"]}],
         "conditions": [{"test": "StringEquals", "variable": "token.actions.githubusercontent.com:aud",
                         "values": ["sts.amazonaws.com"]}]},
        {"actions": ["s3:GetObject"], "principals": [{"type": "*", "identifiers": ["*"]}]},
        {"actions": ["sts:AssumeRole"], "principals": [{"type": "Service", "identifiers": ["b.amazonaws.com"]},
                                                       {"type": "Service", "identifiers": ["a.amazonaws.com"]}]},
    ]})["json"])
    first, second, third = doc["Statement"]
    assert first["Principal"] == {
        "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}
    assert first["Condition"] == {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
    assert second["Principal"] == "*"
    assert third["Principal"] == {"Service": ["b.amazonaws.com", "a.amazonaws.com"]}  # merged, order kept


def test_source_and_override_documents_follow_the_documented_merge():
    # Terraform docs, "Example of Merging Source Documents" / "Example of Merging Override Documents".
    source = policy_document({"statements": [
        {"actions": ["ec2:*"], "resources": ["*"]},
        {"sid": "SidToOverride", "actions": ["s3:*"], "resources": ["*"]}]})["json"]
    override = policy_document({"statements": [
        {"sid": "SidToOverride", "actions": ["s3:*"], "resources": ["arn:aws:s3:::somebucket",
                                                                     "arn:aws:s3:::somebucket/*"]}]})["json"]
    merged = json.loads(policy_document({
        "sourcePolicyDocuments": [source],
        "statements": [{"sid": "SidToOverride", "actions": ["s3:*"], "resources": ["*"]}],
        "overridePolicyDocuments": [override]})["json"])
    assert merged["Statement"] == [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Sid": "SidToOverride", "Effect": "Allow", "Action": "s3:*",
         "Resource": ["arn:aws:s3:::somebucket/*", "arn:aws:s3:::somebucket"]},
    ]
    with pytest.raises(PolicyDocumentError, match="duplicate Sid"):
        policy_document({"sourcePolicyDocuments": [source, source]})
    with pytest.raises(PolicyDocumentError, match="not a JSON policy document"):
        policy_document({"overridePolicyDocuments": ["not json"]})


def test_go_escapes_html_characters_like_the_provider():
    text = policy_document({"statements": [{"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::a&b<c>"]}]})
    assert "a\\u0026b\\u003cc\\u003e" in text["json"]


def test_get_policy_answers_aws_managed_policies_and_not_customer_ones():
    answer = managed_policy_lookup({"arn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert answer["name"] == "AdministratorAccess"
    assert json.loads(answer["policy"])["Statement"][0]["Action"] == "*"
    assert managed_policy_lookup({"arn": "arn:aws:iam::123456789012:policy/mine"}) is None


def test_invoke_results_file(tmp_path):
    path = tmp_path / "answers.json"
    path.write_text(json.dumps({"aws:ec2/getAmi:getAmi": [
        {"args": {"owners": ["amazon"]}, "result": {"id": "ami-0real", "architecture": "x86_64"}},
        {"result": {"id": "ami-0fallback"}}]}))
    results = load_invoke_results(path)
    assert supplied_result(results, "aws:ec2/getAmi:getAmi", {"owners": ["amazon"], "mostRecent": True})["id"] \
        == "ami-0real"
    assert supplied_result(results, "aws:ec2/getAmi:getAmi", {"owners": ["self"]})["id"] == "ami-0fallback"
    assert supplied_result(results, "aws:ec2/getVpc:getVpc", {}) is None
    for bad, message in (("[]", "must be an object"), ('{"x": 1}', "must be a list"), ("{", "not valid JSON"),
                         ('{"getAmi": {"result": {}}}', "not a function token")):
        path.write_text(bad)
        with pytest.raises(InputError, match=message):
            load_invoke_results(path)
    with pytest.raises(InputError, match="does not exist"):
        load_invoke_results(tmp_path / "missing.json")
