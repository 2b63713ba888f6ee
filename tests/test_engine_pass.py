"""The stand-in drives real pack processes over gRPC exactly as the engine does (call order, env, encoding)."""

from __future__ import annotations

import hashlib
import json

import pytest

from ps019.engine import EngineResource, PackPool, Secret, StackRef, run_pass, run_up, unknown
from ps019.model import Level, Severity

STACK = StackRef.parse("acme/web/prod")
PROVIDER_URN = "urn:pulumi:prod::web::pulumi:providers:aws::default_7_0_0"
BUCKET_URN = "urn:pulumi:prod::web::aws:s3/bucket:Bucket::logs"
SECRET_TEXT = "hunter2-very-secret"


def _h(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def resources(**bucket_inputs):
    stack = EngineResource(urn=STACK.root_urn, type="pulumi:pulumi:Stack", custom=False)
    provider = EngineResource(urn=PROVIDER_URN, type="pulumi:providers:aws", id="p-1",
                              inputs={"region": "eu-west-1", "version": "7.0.0"}, outputs={"region": "eu-west-1"})
    inputs = {"bucket": "logs", "count": 20, "password": Secret(SECRET_TEXT), "__defaults": ["bucket"],
              **bucket_inputs}
    bucket = EngineResource(urn=BUCKET_URN, type="aws:s3/bucket:Bucket", id="logs-123", inputs=inputs,
                            outputs={**inputs, "arn": "arn:aws:s3:::logs"}, parent=STACK.root_urn,
                            provider=PROVIDER_URN, dependencies=[PROVIDER_URN],
                            property_dependencies={"bucket": [PROVIDER_URN], "count": []}, protect=True)
    return [stack, provider, bucket]


def seen(result, policy="probe-resource", urn=None):
    out = [json.loads(d.message.split("\n", 1)[1]) for d in result.diagnostics
           if d.policy_name == policy and (urn is None or d.urn == urn)]
    assert out, f"no {policy} diagnostic for {urn}"
    return out[0] if urn or policy == "probe-stack" else out


PROBE_CONFIG = {"probe-resource": {"configKeys": ["ps019:changeTicket", "ps019:approver", "web:dbPassword",
                                                  "ps019:limits"]}}


@pytest.mark.parametrize("dry_run", [True, False])
def test_pack_sees_stack_dry_run_and_config_exactly_as_set(pack_pool, test_packs, dry_run):
    result = run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=dry_run, pool=pack_pool,
                      config={"ps019:changeTicket": "CHG-42", "ps019:approver": "alice", "dbPassword": SECRET_TEXT,
                              "ps019:limits": {"max": 3}},
                      secret_config_keys=["dbPassword"], tags={"env": "production", "team": "web"},
                      policy_pack_config=PROBE_CONFIG)
    view = seen(result, urn=BUCKET_URN)
    assert (view["stack"], view["project"], view["organization"], view["dry_run"]) == ("prod", "web", "acme",
                                                                                       dry_run)
    assert view["config"]["ps019:changeTicket"] == "CHG-42"
    assert view["config"]["ps019:approver"] == "alice"
    assert json.loads(view["config"]["ps019:limits"]) == {"max": 3}  # objects travel as compact JSON strings
    assert view["tags"] == {"env": "production", "team": "web"}
    # The pack received the secret config value in plaintext, but nothing we return carries it.
    assert view["config"]["web:dbPassword"] == "[secret]"
    assert view["config_hashes"]["web:dbPassword"] == _h(SECRET_TEXT)
    assert SECRET_TEXT not in repr(result)


def test_pack_without_organization_gets_the_sdk_default(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(), stack=StackRef.parse("web/prod"), dry_run=True,
                      pool=pack_pool)
    assert seen(result, urn=BUCKET_URN)["organization"] == "organization"


def test_properties_are_encoded_as_the_engine_does(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=True, pool=pack_pool)
    view = seen(result, urn=BUCKET_URN)
    assert view["numbers"] == {"count": 20.0} and view["types"]["count"] == "float"  # doubles on the wire
    assert "__defaults" not in view["types"]  # top-level internal keys dropped for Analyze
    assert view["hashes"]["password"] == _h(SECRET_TEXT)  # secrets reach policies as plaintext
    assert view["provider"] == {"type": "pulumi:providers:aws", "urn": PROVIDER_URN, "name": "default_7_0_0",
                                "props": {"region": "eu-west-1", "version": "7.0.0"}}
    assert view["parent"] == STACK.root_urn and view["protect"] is True and view["timeouts"] == [0, 0, 0]
    # The stack and providers are analyzed too, with no provider of their own.
    assert [d["type"] for d in seen(result)] == ["pulumi:pulumi:Stack", "pulumi:providers:aws",
                                                 "aws:s3/bucket:Bucket"]
    assert seen(result, urn=STACK.root_urn)["provider"] is None
    assert result.pack_name == "probe" and result.pack_version == "2.3.4"  # PulumiPolicy.yaml version wins


def test_analyze_stack_gets_outputs_and_the_graph(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=True, pool=pack_pool)
    graph = {r["urn"]: r for r in seen(result, policy="probe-stack")["resources"]}
    bucket = graph[BUCKET_URN]
    assert bucket["parent"] == STACK.root_urn and bucket["dependencies"] == [PROVIDER_URN]
    assert bucket["property_dependencies"] == {"bucket": [PROVIDER_URN]}  # empty lists dropped
    assert bucket["provider"] == PROVIDER_URN
    assert "arn" in bucket["hashes"]  # outputs, not inputs
    stack_diag = [d for d in result.diagnostics if d.phase == "analyze_stack"][0]
    assert stack_diag.urn == STACK.root_urn  # no urn given: attributed to the root stack
    assert result.stack_analyzed


def test_unknowns_in_preview_become_the_sdk_advisory(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(arn=unknown(), size=unknown("number")), stack=STACK,
                      dry_run=True, pool=pack_pool)
    assert seen(result, urn=BUCKET_URN)["unknown"] == ["arn", "size"]


def test_an_unknown_in_an_update_is_an_input_error(test_packs):
    from ps019.errors import InputError

    with pytest.raises(InputError, match="arn is unknown"):
        run_pass(test_packs / "probe", resources(arn=unknown()), stack=STACK, dry_run=False)


def test_secret_leaked_by_a_policy_is_scrubbed_from_results(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(leakMe=Secret(SECRET_TEXT)), stack=STACK, dry_run=True,
                      pool=pack_pool)
    leak = [d for d in result.diagnostics if d.policy_name == "leak"]
    assert leak and leak[0].message.endswith("the value is [secret]")
    assert SECRET_TEXT not in repr(result) and SECRET_TEXT not in repr(result.diagnostics)


def test_policy_pack_config_levels_and_properties(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=True, pool=pack_pool,
                      policy_pack_config={"all": "mandatory", "probe-stack": "disabled",
                                          "probe-resource": {"enforcementLevel": "advisory", "threshold": 9}})
    view = seen(result, urn=BUCKET_URN)
    # schema default (3) < initial config < file; initial config's "label" survives
    assert view["policy_config"] == {"label": "from-initial-config", "threshold": 9.0}
    assert not [d for d in result.diagnostics if d.policy_name == "probe-stack"]
    probe = [d for d in result.diagnostics if d.policy_name == "probe-resource"]
    assert {d.level for d in probe} == {Level.ADVISORY}


def test_remediation_rewrites_inputs_before_analyze(pack_pool, test_packs):
    result = run_pass(test_packs / "probe", resources(fixMe=True), stack=STACK, dry_run=True, pool=pack_pool,
                      policy_pack_config={"remediate-fix": "remediate"})
    assert [(r.urn, r.policy_name) for r in result.remediations] == [(BUCKET_URN, "remediate-fix")]
    assert "fixed" in seen(result, urn=BUCKET_URN)["types"]
    assert not result.failed


def test_pool_reuses_one_process_per_configuration(test_packs):
    with PackPool() as pool:
        for tags in ({"a": "1"}, {"a": "2"}):
            run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=True, pool=pool, tags=tags)
        assert pool.starts == 1
        result = run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=True, pool=pool,
                          tags={"a": "3"})
        assert seen(result, urn=BUCKET_URN)["tags"] == {"a": "3"}  # ConfigureStack re-sent each pass
        run_pass(test_packs / "probe", resources(), stack=STACK, dry_run=False, pool=pool)
        assert pool.starts == 2  # dry-run lives in the environment: a new process


# --- update vs preview -------------------------------------------------------------------------------------------

def _chain():
    stack = EngineResource(urn=STACK.root_urn, type="pulumi:pulumi:Stack", custom=False)
    made = [stack]
    for name, props in [("a", {"warn": True}), ("b", {"forbidden": True}), ("c", {"forbidden": True}),
                        ("d", {})]:
        made.append(EngineResource(urn=f"urn:pulumi:prod::web::test:index:Thing::{name}", type="test:index:Thing",
                                   inputs=props, outputs={**props, "stackForbidden": name == "d"},
                                   parent=STACK.root_urn))
    return made


def test_update_stops_at_the_first_mandatory_violation(pack_pool, test_packs):
    result = run_pass(test_packs / "mandatory", _chain(), stack=STACK, dry_run=False, pool=pack_pool)
    thing = "urn:pulumi:prod::web::test:index:Thing::"
    assert result.failed and result.blocked_at == thing + "b"
    assert result.analyzed_urns == [STACK.root_urn, thing + "a", thing + "b"]
    assert not result.stack_analyzed
    blocking = result.mandatory
    assert [(d.urn, d.policy_name, d.severity) for d in blocking] == [(thing + "b", "no-forbidden", Severity.HIGH)]


def test_preview_reports_everything(pack_pool, test_packs):
    result = run_pass(test_packs / "mandatory", _chain(), stack=STACK, dry_run=True, pool=pack_pool)
    thing = "urn:pulumi:prod::web::test:index:Thing::"
    assert result.failed and result.blocked_at is None and result.stack_analyzed
    assert len(result.analyzed_urns) == 5
    assert sorted((d.urn, d.policy_name, d.level) for d in result.diagnostics) == [
        (thing + "a", "warn", Level.ADVISORY),
        (thing + "b", "no-forbidden", Level.MANDATORY),
        (thing + "c", "no-forbidden", Level.MANDATORY),
        (thing + "d", "stack-forbidden", Level.MANDATORY),
    ]


def test_run_up_stops_after_a_failed_preview_and_uses_new_processes(test_packs):
    up = run_up(test_packs / "mandatory", _chain(), stack=STACK)
    assert up.preview.failed and up.update is None and up.failed
    clean = [r for r in _chain() if "forbidden" not in r.inputs]
    for r in clean:
        r.outputs = {}
    up = run_up(test_packs / "mandatory", clean, stack=STACK)
    assert not up.failed and up.preview.dry_run and not up.update.dry_run
    assert up.preview.timings["start"] > 0 and up.update.timings["start"] > 0


def test_third_party_pack(pack_pool, test_packs):
    public = EngineResource(urn="urn:pulumi:prod::web::aws:s3/bucket:Bucket::site", type="aws:s3/bucket:Bucket",
                            inputs={"acl": "public-read"})
    result = run_pass(test_packs / "third_party", [public], stack=STACK, dry_run=True, pool=pack_pool)
    assert result.pack_name == "aws-python" and result.failed
    assert [d.policy_name for d in result.diagnostics] == ["s3-no-public-read"]
