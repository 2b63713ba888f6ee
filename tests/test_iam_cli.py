"""``ps019 iam check``: exit codes, JSON shape, SARIF validity, stdin, and the import cost of the command path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ps019.cli import main

DATA = Path(__file__).parent / "data" / "iam"
ALLOW = DATA / "identity" / "allow" / "read-and-list.json"
DENY = DATA / "identity" / "deny" / "full-admin--action-star.json"
ERROR = DATA / "identity" / "error" / "effect-lowercase.json"
TRUST_DENY = DATA / "trust" / "deny" / "trust-exposure--bare-star-principal.json"


def run(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(["iam", "check", *args])
    return exc.value.code, capsys.readouterr().out


@pytest.mark.parametrize(
    "files, code",
    [([ALLOW], 0), ([ALLOW, ALLOW], 0), ([ALLOW, DENY], 1), ([DENY, ERROR], 2), ([ALLOW, Path("/nonexistent.json")], 2)],
)
def test_exit_status(capsys, files, code):
    status, _ = run(capsys, "--format", "json", *map(str, files))
    assert status == code


def test_json_output_shape(capsys):
    status, out = run(capsys, "--format", "json", str(ALLOW), str(DENY), str(ERROR))
    data = json.loads(out)
    assert status == 2 and isinstance(data, list) and [d["file"] for d in data] == [str(ALLOW), str(DENY), str(ERROR)]
    assert [d["verdict"] for d in data] == ["allow", "deny", "error"]
    assert all({"file", "kind", "verdict", "findings"} <= set(d) and d["kind"] == "identity" for d in data)
    assert "message" not in data[0] and data[2]["message"] == \
        'Statement[0]: "Effect" must be "Allow" or "Deny", got "allow"'
    finding = data[1]["findings"][0]
    assert finding["category"] == "full-admin" and finding["severity"] == "critical"
    assert finding["statements"] == [0] and finding["fix"]


def test_kind_trust(capsys):
    status, out = run(capsys, "--kind", "trust", "--format", "json", str(TRUST_DENY))
    [result] = json.loads(out)
    assert status == 1 and result["kind"] == "trust" and result["findings"][0]["category"] == "trust-exposure"


def test_unreadable_and_invalid_json_are_errors(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    status, out = run(capsys, "--format", "json", str(bad), str(tmp_path / "missing.json"))
    first, second = json.loads(out)
    assert status == 2
    assert first["message"].startswith("invalid JSON") and second["message"].startswith("cannot read file")


def test_sarif_is_valid_2_1_0(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    status, out = run(capsys, "--format", "sarif", str(ALLOW), str(DENY), str(ERROR))
    sarif = json.loads(out)
    schema = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(sarif, schema)
    results = sarif["runs"][0]["results"]
    assert status == 2 and {r["ruleId"] for r in results} == {"full-admin", "iam-policy-error"}
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results)


def test_table_output_lists_findings_and_summary(capsys):
    status, out = run(capsys, str(ALLOW), str(DENY))
    assert status == 1 and "full-admin" in out and "1 allowed, 1 denied, 0 error(s)" in out


def test_stdin_and_command_path_avoid_heavy_imports():
    code = (
        "import sys\n"
        "from ps019.cli import main\n"
        "try:\n"
        "    main(['iam', 'check', '--format', 'json', '-'])\n"
        "except SystemExit as exc:\n"
        "    heavy = [m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_policy', 'boto3', 'botocore', 'rich')]\n"
        "    sys.stderr.write(repr(heavy))\n"
        "    raise\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], input=DENY.read_bytes(), capture_output=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)[0]["file"] == "-"
    assert proc.stderr.decode().strip().splitlines()[-1] == "[]"
