"""The adapter never lets an exception reach the engine, and converts the engine's wire format faithfully.

These call the servicer in-process (thousands of generated cases would take minutes over gRPC); the gRPC path itself
is covered by test_pack_adapter.py.
"""

from __future__ import annotations

import os

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings, strategies as st
from pulumi.runtime.proto import analyzer_pb2 as pb

from ps019.controls.base import Control
from ps019.controls.registry import all_controls
from ps019.engine.values import Secret, marshal_properties, unknown
from ps019.model import UNKNOWN, Level, Severity, Violation
from ps019.pack import build_policies
from ps019.pack.convert import struct_to_plain
from ps019.pack.servicer import INTERNAL_ERROR_ID, Ps019Servicer


@pytest.fixture(scope="module")
def servicer(tmp_path_factory):
    home = tmp_path_factory.mktemp("robust")
    saved_store = os.environ.get("PS019_EVIDENCE_STORE")
    os.environ.update(PULUMI_PROJECT="robust", PULUMI_STACK="dev", PULUMI_DRY_RUN="true",
                      PS019_EVIDENCE_STORE=f"sqlite:///{home}/e.db")
    try:
        controls = all_controls()
        yield Ps019Servicer("ps019", "0.1.0", controls, build_policies(controls))
    finally:
        for k in ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN"):
            os.environ.pop(k, None)
        if saved_store is None:
            os.environ.pop("PS019_EVIDENCE_STORE", None)
        else:
            os.environ["PS019_EVIDENCE_STORE"] = saved_store


json_leaf = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=20), st.sampled_from(["*", "arn:aws:iam::*:role/*", '{"Statement": "x"}']))
engine_value = st.recursive(
    st.one_of(json_leaf, st.builds(Secret, json_leaf), st.just(unknown("string"))),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=5)),
    max_leaves=20)
RESOURCE_TYPES = sorted({t for c in all_controls() for t in (c.resource_types or ())} | {"aws:s3/bucket:Bucket"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rtype=st.sampled_from(RESOURCE_TYPES),
       props=st.dictionaries(st.sampled_from(["policy", "assumeRolePolicy", "inlinePolicies", "managedPolicyArns",
                                              "policyArn", "accessKey", "secretKey", "assumeRoles", "tags", "name",
                                              "policyDocument", "arn"]), engine_value, max_size=6))
def test_random_property_bags_never_crash_the_pack(servicer, rtype, props):
    request = pb.AnalyzeRequest(type=rtype, name="r", urn=f"urn:pulumi:dev::robust::{rtype}::r",
                                properties=marshal_properties(props, dry_run=True))
    response = servicer.Analyze(request, None)
    internal = [d.message for d in response.diagnostics if d.policyName == INTERNAL_ERROR_ID]
    crashed = [d.message for d in response.diagnostics if "could not evaluate" in d.message]
    assert not internal and not crashed, internal + crashed


def test_a_control_that_raises_fails_closed_at_its_level_and_names_the_error(tmp_path):
    def broken(resource, ctx, params):
        raise KeyError("boom")

    control = Control(id="PS019-TEST-001", title="broken", clause="test", severity=Severity.LOW,
                      level=Level.MANDATORY, rationale="", remediation="", check=broken)
    service = Ps019Servicer("ps019", "0.1.0", (control,), build_policies((control,)))
    request = pb.AnalyzeRequest(type="aws:s3/bucket:Bucket", name="b", urn="urn:pulumi:dev::robust::aws:s3/bucket:Bucket::b")
    response = service.Analyze(request, None)
    [diag] = response.diagnostics
    assert diag.policyName == "PS019-TEST-001" and diag.enforcementLevel == pb.MANDATORY
    assert "KeyError" in diag.message and "boom" in diag.message


def test_conversion_unwraps_secrets_lists_their_paths_and_maps_unknowns():
    struct = marshal_properties({"a": 20, "s": Secret("pw"), "n": {"deep": [Secret({"k": "v"})]},
                                 "u": unknown("string"), "__defaults": ["a"]}, dry_run=True)
    props, secret_paths = struct_to_plain(struct)
    assert props == {"a": 20.0, "s": "pw", "n": {"deep": [{"k": "v"}]}, "u": UNKNOWN}
    assert isinstance(props["a"], float)
    assert secret_paths == {("s",), ("n", "deep", 0)}


def test_unverifiable_findings_are_advisory_whatever_the_level():
    def unverifiable(resource, ctx, params):
        return [Violation("cannot be verified until update", details={"unverifiable": True})]

    control = Control(id="PS019-TEST-002", title="t", clause="test", severity=Severity.HIGH, level=Level.MANDATORY,
                      rationale="", remediation="", check=unverifiable)
    service = Ps019Servicer("ps019", "0.1.0", (control,), build_policies((control,)))
    response = service.Analyze(pb.AnalyzeRequest(type="x:y:Z", name="z", urn="urn:pulumi:dev::robust::x:y:Z::z",
                                                 properties=struct_pb2.Struct()), None)
    assert [d.enforcementLevel for d in response.diagnostics] == [pb.ADVISORY]


def test_evidence_digest_from_the_wire_equals_the_plain_definition_with_nested_secrets():
    from ps019.digest import inputs_digest
    from ps019.pack.convert import request_view

    props = {"a": Secret({"inner": [Secret("x"), 2]}), "b": [1, Secret("pw")], "c": {"d": Secret(True)}}
    view = request_view(pb.AnalyzeRequest(type="t:i:T", urn="urn:pulumi:s::p::t:i:T::n",
                                          properties=marshal_properties(props, dry_run=False)))
    assert view.inputs_digest == inputs_digest(view.props, view.secret_paths)
    assert "pw" not in str(view.redacted_props())
