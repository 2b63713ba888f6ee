"""Pulumi Python programs captured under mocks look to a policy pack as they would under the real engine."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ps019.engine import Secret, StackRef, capture_program, run_pass, run_up
from ps019.errors import InputError
from ps019.model import is_unknown

PROGRAMS = Path(__file__).resolve().parent / "programs"
STACK = StackRef.parse("acme/shop/dev")
CONFIG = {"aws:region": "us-west-2", "dbPassword": Secret("pw-for-the-db-123")}
P = "urn:pulumi:dev::shop::"


@pytest.fixture(scope="module")
def preview():
    return capture_program(PROGRAMS / "nested", STACK, True, CONFIG)


@pytest.fixture(scope="module")
def update():
    return capture_program(PROGRAMS / "nested", STACK, False, CONFIG)


def test_urns_match_the_engine_for_nested_components(preview):
    urns = {r.urn for r in preview}
    assert urns == {
        P + "pulumi:pulumi:Stack::shop-dev",
        P + "pulumi:providers:aws::eu",
        P + "pulumi:providers:aws::default_7_51_1",
        P + "shop:web:Site::site",
        P + "shop:web:Site$aws:s3/bucket:Bucket::site-content",
        P + "shop:web:Site$shop:web:Access::site-access",
        P + "shop:web:Site$shop:web:Access$aws:s3/bucketPolicy:BucketPolicy::site-access-policy",
        P + "aws:ssm/parameter:Parameter::db-password",
    }
    policy = preview.by_name("site-access-policy")
    assert policy.parent == P + "shop:web:Site$shop:web:Access::site-access"
    assert policy.dependencies == [P + "shop:web:Site$aws:s3/bucket:Bucket::site-content"]
    assert preview.by_name("site").parent == P + "pulumi:pulumi:Stack::shop-dev"


def test_stack_first_and_default_provider_synthesised_before_first_use(preview):
    order = [r.urn for r in preview]
    assert order[0] == P + "pulumi:pulumi:Stack::shop-dev"
    default = P + "pulumi:providers:aws::default_7_51_1"
    first_user = min(i for i, r in enumerate(preview) if r.provider == default)
    assert order.index(default) < first_user
    provider = preview.resources[order.index(default)]
    assert provider.inputs == {"region": "us-west-2", "version": "7.51.1"} and provider.parent is None
    assert preview.by_name("db-password").provider == P + "pulumi:providers:aws::eu"
    assert preview.by_name("site").provider is None  # components have no provider


def test_preview_has_unknowns_update_has_ids(preview, update):
    policy = preview.by_name("site-access-policy")
    assert is_unknown(policy.inputs["bucket"]) and is_unknown(policy.inputs["policy"])
    assert policy.property_dependencies.keys() == {"bucket", "policy"}
    done = update.by_name("site-access-policy")
    bucket = update.by_name("site-content")
    # The provider auto-names the bucket (name + 7 hex characters, deterministic here); its id is that name.
    assert re.fullmatch(r"site-content-[0-9a-f]{7}", bucket.id) and bucket.inputs["bucket"] == bucket.id
    assert done.inputs["bucket"] == bucket.id
    assert f"arn:aws:s3:::{bucket.id}/*" in done.inputs["policy"]
    assert update.by_name("site").id == ""
    assert capture_program(PROGRAMS / "nested", STACK, False, CONFIG).by_name("site-content").id == bucket.id


def test_secret_config_reaches_the_program_as_a_secret(preview):
    param = preview.by_name("db-password")
    assert param.inputs["value"] == Secret("pw-for-the-db-123")
    assert param.custom_timeouts.create == 300.0
    assert preview.by_name("site-content").protect


def test_repeated_captures_do_not_leak_state():
    other = capture_program(PROGRAMS / "nested", "acme/shop/qa", True, {"dbPassword": Secret("x-123456")})
    assert all(r.urn.startswith("urn:pulumi:qa::shop::") for r in other)
    assert next(r for r in other if r.name == "default_7_51_1").inputs == {"version": "7.51.1"}


def test_captured_program_through_the_pack(preview, update, pack_pool, test_packs):
    result = run_pass(test_packs / "probe", preview, stack=STACK, dry_run=True, pool=pack_pool,
                      config={"aws:region": "us-west-2", **CONFIG})
    assert len(result.analyzed_urns) == len(preview) and result.stack_analyzed
    views = {json.loads(d.message.split("\n", 1)[1])["urn"]: json.loads(d.message.split("\n", 1)[1])
             for d in result.diagnostics if d.policy_name == "probe-resource"}
    assert views[P + "shop:web:Site$shop:web:Access$aws:s3/bucketPolicy:BucketPolicy::site-access-policy"][
        "unknown"] == ["bucket", "policy"]
    assert views[P + "shop:web:Site$aws:s3/bucket:Bucket::site-content"]["provider"]["name"] == "default_7_51_1"
    up = run_up(test_packs / "mandatory", preview, update, stack=STACK, config=CONFIG)
    assert not up.failed and up.update.stack_analyzed


def test_program_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="is project 'shop', not 'web'"):
        capture_program(PROGRAMS / "nested", "acme/web/dev", True, CONFIG)
    with pytest.raises(InputError, match="has no Pulumi.yaml"):
        capture_program(tmp_path, "acme/shop/dev", True)
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("import pulumi\nraise ValueError('the program broke: pw-for-the-db-123')\n")
    with pytest.raises(InputError, match=r"failed at __main__.py:2: ValueError: the program broke: \[secret\]"):
        capture_program(tmp_path, "acme/shop/dev", True, CONFIG)


def test_docs_example():
    """docs/engine.md opens with this; keep them in step."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "engine.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S).group(1)
    import os

    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parent.parent)
    try:
        namespace: dict = {"print": lambda *a: None}
        exec(compile(code, "docs/engine.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    assert not namespace["up"].failed and namespace["up"].update.stack_analyzed
    assert len(namespace["preview"]) > 5 and namespace["preview"].config["web-service:dbPassword"] == Secret(
        "correct-horse-battery")


def test_stack_config_file_supplies_plain_values_and_flags_secure_ones(tmp_path):
    from ps019.engine import load_stack_config

    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  aws:region: eu-west-1\n  shop:tags:\n    team: web\n  dbPassword:\n    secure: v1:AAAA\n")
    config, secure = load_stack_config(tmp_path, "acme/shop/dev")
    assert config == {"aws:region": "eu-west-1", "shop:tags": {"team": "web"}} and secure == ["shop:dbPassword"]
