"""`--format junit`: JUnit XML that CI systems render as test reports, one test case per policy and resource (as
Checkov does), validated against the Apache Ant JUnit schema (tests/data/junit/JUnit.xsd, Apache-2.0)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
XSD = ROOT / "tests" / "data" / "junit" / "JUnit.xsd"


@pytest.fixture(autouse=True)
def _reset_logging():
    import structlog

    yield
    structlog.reset_defaults()


def _junit(capsys, *args) -> tuple[int, str]:
    from ps019.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", *args, "--format", "junit"])
    return exit_info.value.code, capsys.readouterr().out


def test_junit_validates_and_has_one_case_per_policy_and_resource(capsys, tmp_path):
    import xmlschema

    from ps019.cli.analyze import run_analysis

    args = ["--state", "examples/deploy-role/stack-export.dev.json", "--stack", "acme/deploy-role/dev"]
    code, text = _junit(capsys, *args)
    assert code == 1  # the example's over-privileged IAM is mandatory
    xmlschema.XMLSchema(str(XSD)).validate(text)
    report = run_analysis(stack="acme/deploy-role/dev", state="examples/deploy-role/stack-export.dev.json")
    [pass_] = report["passes"]
    suite = ET.fromstring(text).find("testsuite")
    cases = suite.findall("testcase")
    expected = sum(len(s["passed"]) + len(s["failed"]) + len(s["not_applicable"]) for s in pass_["summaries"])
    assert len(cases) == int(suite.get("tests")) == expected
    failed = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(failed) == int(suite.get("failures")) == pass_["compliance"]["failed"]
    assert len(skipped) == int(suite.get("skipped")) == pass_["compliance"]["not_applicable"]
    iam = [c for c in failed if c.get("name").startswith("[PS019-IAM-001]")]
    assert iam and iam[0].find("failure").get("type") == "mandatory"
    assert "deploy-everything" in iam[0].get("classname")
    assert all(c.find("skipped").get("message").startswith("not applicable: ") for c in skipped)


def test_junit_of_an_up_has_a_suite_per_pass(capsys, tmp_path):
    from ps019.cli import main

    out = tmp_path / "reports" / "ps019.xml"
    with pytest.raises(SystemExit):
        main(["up", "--state", "examples/web-service/stack-export.dev.json", "--stack", "acme/web-service/dev",
              "--format", "junit", "-o", str(out)])
    import xmlschema

    xmlschema.XMLSchema(str(XSD)).validate(str(out))
    suites = ET.parse(out).getroot().findall("testsuite")
    assert [s.get("id") for s in suites] == ["0", "1"]
    assert suites[0].get("name").startswith("preview: ps019@") and suites[1].get("name").startswith("update: ps019@")
