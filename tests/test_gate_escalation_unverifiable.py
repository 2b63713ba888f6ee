"""PS019-GATE-005 escalates findings at or above the delegated severity. A finding a control could not decide yet
(parts of the document are computed from other resources, so unknown in a preview) is reported advisory with the
promise that the update pass checks it in full. It is not a risk found in the change, so it must not escalate: before,
a production preview of pulumi/examples' aws-py-apigateway-lambda-serverless failed on GATE-005 for its two Lambda
permissions (an API Gateway principal scoped by a SourceArn computed from the API), so `pulumi up` never reached the
update pass that checks them. A real high finding still escalates, and GATE-005 names the control that found it."""

from __future__ import annotations

import textwrap

import pytest

from ps019.cli.analyze import run_analysis

PROGRAM = """
import pulumi_aws as aws

fn = aws.lambda_.Function("fn", role="arn:aws:iam::123456789012:role/fn", runtime="python3.12",
                          handler="h.handler", code=None)
api = aws.apigateway.RestApi("api")
aws.lambda_.Permission("{name}", action="lambda:InvokeFunction", function=fn.name,
                       principal="{principal}", source_arn={source_arn})
"""


def _program(tmp_path, name: str, principal: str, source_arn: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "Pulumi.yaml").write_text("name: esc\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(
        PROGRAM.format(name=name, principal=principal, source_arn=source_arn)))
    return str(tmp_path)


def _diagnostics(report: dict, name: str) -> dict[str, dict]:
    [preview] = report["passes"]
    return {d["policy"]: d for d in preview["diagnostics"] if d["urn"].endswith(f"::{name}")}


@pytest.fixture(autouse=True)
def _own_store(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PS019_EVIDENCE_STORE", raising=False)


def test_a_finding_unknown_until_update_does_not_escalate_in_the_preview(tmp_path):
    program = _program(tmp_path / "p", "invoke-from-api", "apigateway.amazonaws.com",
                       'api.execution_arn.apply(lambda arn: arn + "/*/*")')
    found = _diagnostics(run_analysis(stack="acme/esc/prod", program=program), "invoke-from-api")
    assert found["PS019-RBP-006"]["level"] == "advisory"
    assert "cannot be verified until update" in found["PS019-RBP-006"]["message"]
    assert "PS019-GATE-005" not in found, found["PS019-GATE-005"]["message"]


def test_a_high_finding_escalates_and_gate_005_names_it(tmp_path):
    program = _program(tmp_path / "p", "invoke-from-anyone", "*", "None")
    found = _diagnostics(run_analysis(stack="acme/esc/prod", program=program), "invoke-from-anyone")
    assert found["PS019-RBP-006"]["level"] == "mandatory"
    message = found["PS019-GATE-005"]["message"]
    assert found["PS019-GATE-005"]["level"] == "mandatory"
    assert "1 finding(s) at or above high severity (worst: high: PS019-RBP-006)" in message
