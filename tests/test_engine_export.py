"""`pulumi stack export` files (deployment v3/v4, DIY checkpoints) become engine resources faithfully."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from ps019.engine import Secret, StackRef, load_stack_export, run_pass
from ps019.engine.values import SECRET_SIG, SIG_KEY
from ps019.errors import InputError

STACK_URN = "urn:pulumi:prod::shop::pulumi:pulumi:Stack::shop-prod"
PROVIDER_URN = "urn:pulumi:prod::shop::pulumi:providers:aws::default_7_51_1"
BUCKET_URN = "urn:pulumi:prod::shop::aws:s3/bucket:Bucket::assets"
PARAM_URN = "urn:pulumi:prod::shop::aws:ssm/parameter:Parameter::db"


def deployment() -> dict:
    """Shaped like a real `pulumi stack export --show-secrets` of CLI v3.2xx (see research §4.3)."""
    return {"version": 3, "deployment": {
        "manifest": {"time": "2026-11-01T10:00:00Z", "magic": "0" * 64, "version": "v3.259.0"},
        "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:abc"}},
        "resources": [
            {"urn": STACK_URN, "custom": False, "type": "pulumi:pulumi:Stack",
             "outputs": {"bucketName": "assets-1234"}},
            {"urn": PROVIDER_URN, "custom": True, "id": "0d6b5f0e-1111-2222-3333-444455556666",
             "type": "pulumi:providers:aws", "inputs": {"region": "eu-west-1", "version": "7.51.1",
                                                       "__internal": {"x": 1}},
             "outputs": {"region": "eu-west-1", "version": "7.51.1"}},
            {"urn": BUCKET_URN, "custom": True, "id": "assets-1234", "type": "aws:s3/bucket:Bucket",
             "inputs": {"bucket": "assets-1234", "forceDestroy": False, "tags": {"owner": "web"},
                        "__defaults": ["bucket"]},
             "outputs": {"arn": "arn:aws:s3:::assets-1234", "bucket": "assets-1234", "tags": {"owner": "web"},
                         "versioning": {"enabled": False, "mfaDelete": False}},
             "parent": STACK_URN, "protect": True,
             "provider": f"{PROVIDER_URN}::0d6b5f0e-1111-2222-3333-444455556666",
             "propertyDependencies": {"bucket": [], "tags": []}, "customTimeouts": {"create": 600},
             "sourcePosition": "project:///__main__.py#12,1"},
            {"urn": PARAM_URN, "custom": True, "id": "db", "type": "aws:ssm/parameter:Parameter",
             "inputs": {"type": "SecureString",
                        "value": {SIG_KEY: SECRET_SIG, "plaintext": json.dumps("s3cr3t-db-pass")},
                        "tier": {SIG_KEY: SECRET_SIG, "ciphertext": "v1:AAAA:BBBB"},
                        "bucketRef": {"4dabf18193072939515e22adb298388d": "5cf8f73096256a8f31e491e813e4eb8e",
                                      "urn": BUCKET_URN, "id": "assets-1234"}},
             "outputs": {"value": {SIG_KEY: SECRET_SIG, "plaintext": json.dumps("s3cr3t-db-pass")},
                         "arn": "arn:aws:ssm:eu-west-1:123456789012:parameter/db"},
             "parent": STACK_URN, "dependencies": [BUCKET_URN],
             "propertyDependencies": {"value": [], "bucketRef": [BUCKET_URN]},
             "provider": f"{PROVIDER_URN}::0d6b5f0e-1111-2222-3333-444455556666"},
            {"urn": "urn:pulumi:prod::shop::aws:s3/bucket:Bucket::old", "custom": True, "id": "old",
             "type": "aws:s3/bucket:Bucket", "delete": True, "inputs": {}, "outputs": {}},
        ],
        "pending_operations": []}}


def write(tmp_path, document, name="export.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_export_resources_in_order_with_graph_and_options(tmp_path):
    export = load_stack_export(write(tmp_path, deployment()), StackRef.parse("acme/shop/prod"))
    assert [r.urn for r in export] == [STACK_URN, PROVIDER_URN, BUCKET_URN, PARAM_URN]  # delete: true skipped
    bucket = export.resources[2]
    assert bucket.provider == PROVIDER_URN and bucket.parent == STACK_URN and bucket.protect
    assert bucket.property_dependencies == {}  # empty lists dropped
    assert bucket.custom_timeouts.create == 600.0
    assert bucket.inputs["tags"] == {"owner": "web"} and "versioning" in bucket.outputs
    param = export.resources[3]
    assert param.dependencies == [BUCKET_URN] and param.property_dependencies == {"bucketRef": [BUCKET_URN]}
    assert export.resources[1].is_provider and export.resources[0].is_stack


def test_export_secrets_plaintext_and_ciphertext(tmp_path):
    export = load_stack_export(write(tmp_path, deployment()))
    param = export.resources[3]
    assert param.inputs["value"] == Secret("s3cr3t-db-pass")
    assert param.inputs["tier"] == Secret("[secret]")  # cannot be decrypted offline, as `policy analyze --file`
    assert len(export.warnings) == 1 and "encrypted" in export.warnings[0]
    assert "s3cr3t-db-pass" not in repr(export.resources) + " ".join(export.warnings)


def test_export_analyzed_through_a_real_pack(tmp_path, pack_pool, test_packs):
    export = load_stack_export(write(tmp_path, deployment()), "acme/shop/prod")
    result = run_pass(test_packs / "probe", export, stack=StackRef.parse("acme/shop/prod"), dry_run=True,
                      pool=pack_pool)
    views = {json.loads(d.message.split("\n", 1)[1])["urn"]: json.loads(d.message.split("\n", 1)[1])
             for d in result.diagnostics if d.policy_name == "probe-resource"}
    param = views[PARAM_URN]
    sha = lambda v: hashlib.sha256(json.dumps(v).encode()).hexdigest()  # noqa: E731
    assert param["hashes"]["value"] == sha("s3cr3t-db-pass")  # plaintext reaches the policy
    assert param["hashes"]["bucketRef"] == sha("assets-1234")  # resource reference flattened to its id
    assert param["provider"]["urn"] == PROVIDER_URN
    assert param["provider"]["props"] == {"region": "eu-west-1", "version": "7.51.1"}  # __internal dropped
    assert "__defaults" not in views[BUCKET_URN]["types"]
    stack_view = [json.loads(d.message.split("\n", 1)[1]) for d in result.diagnostics
                  if d.policy_name == "probe-stack"][0]
    graph = {r["urn"]: r for r in stack_view["resources"]}
    assert graph[BUCKET_URN]["hashes"].keys() == {"arn", "bucket", "tags", "versioning"}  # outputs
    assert graph[PARAM_URN]["property_dependencies"] == {"bucketRef": [BUCKET_URN]}
    assert "s3cr3t-db-pass" not in repr(result)


def test_version_4_and_diy_checkpoint_shapes(tmp_path):
    v4 = deployment()
    v4["version"] = 4
    v4["features"] = ["refreshBeforeUpdate"]
    assert len(load_stack_export(write(tmp_path, v4, "v4.json"))) == 4
    checkpoint = {"version": 3, "checkpoint": {"stack": "acme/shop/prod", "latest": deployment()["deployment"]}}
    assert len(load_stack_export(write(tmp_path, checkpoint, "cp.json"), "acme/shop/prod")) == 4


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{not json", "is not valid JSON"),
    ("[]", "is not a JSON object"),
    ('{"version": 3}', "neither 'deployment' nor 'checkpoint'"),
    ('{"version": 2, "deployment": {"resources": []}}', "deployment version 2"),
    ('{"version": 3, "deployment": {"resources": [{"urn": "nope", "type": "x"}]}}', "is not a Pulumi URN"),
])
def test_bad_exports_are_one_line_input_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        load_stack_export(path)
    assert "\n" not in str(info.value)


def test_export_for_another_stack_is_refused(tmp_path):
    with pytest.raises(InputError, match="export is for stack shop/prod, not shop/staging"):
        load_stack_export(write(tmp_path, deployment()), "acme/shop/staging")


def test_dangling_provider_reference_is_refused(tmp_path):
    document = deployment()
    document["deployment"]["resources"] = [copy.deepcopy(document["deployment"]["resources"][2])]
    with pytest.raises(InputError, match="not a provider in the export"):
        load_stack_export(write(tmp_path, document))
