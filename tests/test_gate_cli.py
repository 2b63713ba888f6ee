"""The approver's workflow through the CLI: keygen → change-request new → approve → validate; and the schema."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jsonschema
import pytest

from ps019.cli import main
from ps019.gate import change_request as crm

REPO = Path(__file__).resolve().parents[1]
COMMIT = "c" * 40


def run(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture
def workspace(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PS019_NOW", "2026-11-20T12:00:00Z")
    monkeypatch.chdir(tmp_path)
    entries = []
    for name, roles in (("alice@example.com", ["approver"]), ("sec@example.com", ["approver", "security"])):
        argv = ["keygen", "--out", "keys", "--identity", name] + [x for r in roles for x in ("--role", r)]
        code, out, _ = run(capsys, *argv)
        assert code == 0
        entries.append(json.loads(out))
    (tmp_path / "pack.json").write_text(json.dumps({"ps019-settings": {"gate": {"trustedKeys": entries}}}))
    monkeypatch.setenv("PS019_POLICY_PACK_CONFIG", str(tmp_path / "pack.json"))  # what approvers have set
    code, _, err = run(capsys, "change-request", "new", "--out", "cr.json", "--ticket", "CHG-7", "--summary", "s",
                       "--owner", "web", "--author", "carol@example.com", "--stack", "acme/web/prod", "--commit",
                       COMMIT, "--rollback-plan", "r", "--monitoring-plan", "m", "--test-evidence", "t")
    assert code == 0, err
    return tmp_path


def test_keygen_writes_0600_key_and_prints_trusted_entry(workspace):
    key = workspace / "keys" / "alice_example.com.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    entry = json.loads((workspace / "pack.json").read_text())["ps019-settings"]["gate"]["trustedKeys"][0]
    assert entry["identity"] == "alice@example.com" and entry["roles"] == ["approver"]
    assert "PRIVATE" not in (workspace / "pack.json").read_text()


def test_approve_then_validate_verifies(workspace, capsys):
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "alice@example.com")
    assert code == 0, err
    code, _, _ = run(capsys, "approve", "cr.json", "--key", "keys/sec_example.com.key", "--identity",
                     "sec@example.com", "--role", "security", "--expires", "24h")
    assert code == 0
    code, out, _ = run(capsys, "change-request", "validate", "cr.json", "--policy-pack-config", "pack.json")
    assert code == 0 and "2 approval(s)" in out and out.count(": verified") == 2
    request, problems = crm.parse_change_request((workspace / "cr.json").read_bytes())
    assert problems == [] and request.approvals[1].expires_at is not None


def test_validate_detects_edit_after_approval(workspace, capsys):
    run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity", "alice@example.com")
    doc = json.loads((workspace / "cr.json").read_text())
    doc["stacks"] = ["acme/web/prod", "acme/db/prod"]
    (workspace / "cr.json").write_text(json.dumps(doc))
    code, out, _ = run(capsys, "change-request", "validate", "cr.json", "--policy-pack-config", "pack.json")
    assert code == 1 and "signature does not match the signed content" in out


def test_validate_reports_field_errors_without_traceback(workspace, capsys):
    doc = json.loads((workspace / "cr.json").read_text())
    doc["approvals"] = [{"approver": "x", "role": "approver", "signed_at": "2026-11-20T00:00:00Z",
                         "key_id": "ed25519:" + "0" * 32}]
    del doc["author"]
    (workspace / "cr.json").write_text(json.dumps(doc))
    code, out, err = run(capsys, "change-request", "validate", "cr.json")
    assert code == 1 and "Traceback" not in out + err
    assert "author: field required" in out and "approvals[0].signature: field required" in out


def test_approve_refuses_invalid_expired_or_own_request(workspace, capsys):
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "carol@example.com")
    assert code == 2 and "you (carol@example.com) are the author" in err
    doc = json.loads((workspace / "cr.json").read_text())
    doc["expires_at"] = "2026-11-20T11:00:00Z"
    (workspace / "cr.json").write_text(json.dumps(doc))
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "alice@example.com")
    assert code == 2 and "refusing to sign" in err and "expired" in err
    (workspace / "bad.json").write_text("{not json")
    code, _, err = run(capsys, "approve", "bad.json", "--key", "keys/alice_example.com.key", "--identity", "a@b")
    assert code == 2 and "bad.json: not valid JSON" in err


def test_the_author_signs_with_role_author_and_nobody_else_can(workspace, capsys):
    """The documented author step: a key for the author (role author: it approves nothing), trusted in the pack
    config; `approve --role author` signs, and the same command by someone else is refused."""
    code, out, _ = run(capsys, "keygen", "--out", "keys", "--identity", "carol@example.com", "--role", "author")
    assert code == 0
    config = json.loads((workspace / "pack.json").read_text())
    config["ps019-settings"]["gate"]["trustedKeys"].append(json.loads(out))
    (workspace / "pack.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "alice@example.com", "--role", "author")
    assert code == 2 and "you (alice@example.com) are not the author carol@example.com" in err
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/carol_example.com.key", "--identity",
                       "carol@example.com", "--role", "author")
    assert code == 0, err
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/carol_example.com.key", "--identity",
                       "carol@example.com")
    assert code == 2 and "are the author" in err and "approver" in err  # her key approves nothing either
    code, out, _ = run(capsys, "change-request", "validate", "cr.json", "--policy-pack-config", "pack.json")
    assert code == 0 and "carol@example.com as author" in out and ": verified" in out


def test_approve_refuses_a_world_readable_key(workspace, capsys):
    (workspace / "keys" / "alice_example.com.key").chmod(0o644)
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "alice@example.com")
    assert code == 2 and "chmod 600" in err


def test_yaml_change_request_round_trips(workspace, capsys):
    code, _, _ = run(capsys, "change-request", "new", "--out", "cr.yaml", "--ticket", "CHG-8", "--stack",
                     "acme/web/prod", "--commit", COMMIT, "--author", "carol@example.com", "--summary", "rotate",
                     "--owner", "payments", "--test-evidence", "https://ci/1", "--rollback-plan", "https://wiki/rb",
                     "--monitoring-plan", "https://wiki/mon", "--security-review", "SEC-1")
    assert code == 0
    run(capsys, "approve", "cr.yaml", "--key", "keys/alice_example.com.key", "--identity", "alice@example.com")
    assert (workspace / "cr.yaml").read_text().lstrip()[0] != "{"
    code, out, _ = run(capsys, "change-request", "validate", "cr.yaml", "--policy-pack-config", "pack.json")
    assert code == 0 and ": verified" in out


def test_validate_with_the_pack_config_refuses_what_the_gate_would_block(workspace, capsys):
    """An approver must not sign a request the gate is bound to block: template placeholders and the fields the
    stack's tier requires for the change class are checked by validate too."""
    code, _, _ = run(capsys, "change-request", "new", "--out", "todo.json", "--stack", "acme/web/prod",
                     "--commit", COMMIT, "--author", "carol@example.com")
    assert code == 0
    code, out, _ = run(capsys, "change-request", "validate", "todo.json", "--policy-pack-config", "pack.json")
    assert code == 1
    assert "still the template placeholder" in out
    assert "test_evidence: required for a normal change in production (acme/web/prod)" in out


def test_missing_file_is_exit_2(workspace, capsys):
    code, _, err = run(capsys, "change-request", "validate", "nope.json")
    assert code == 2 and "nope.json: no such file" in err


def test_published_schema_is_current(capsys):
    code, out, _ = run(capsys, "change-request", "schema")
    assert code == 0
    published = (REPO / "docs" / "change-request.schema.json").read_text()
    assert json.loads(out) == json.loads(published), "regenerate: ps019 change-request schema > docs/change-request.schema.json"


def test_schema_accepts_what_the_model_accepts(workspace, capsys):
    run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity", "alice@example.com")
    jsonschema.validate(json.loads((workspace / "cr.json").read_text()), crm.json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"ticket": "CHG-1"}, crm.json_schema())


def test_approve_refuses_someone_elses_key_and_never_silently_replaces_an_approval(workspace, capsys):
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "sec@example.com", "--policy-pack-config", "pack.json")
    assert code == 2 and "belongs to alice@example.com, not sec@example.com" in err
    assert run(capsys, "approve", "cr.json", "--key", "keys/sec_example.com.key", "--identity",
               "sec@example.com")[0] == 0
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/alice_example.com.key", "--identity",
                       "sec@example.com", "--allow-untrusted")
    assert code == 2 and "already holds an approval by sec@example.com" in err


# --- operators' and validators' path (issue 11): validate and approve apply the gate's own rules ------------------------


def test_validate_without_a_config_applies_the_gates_built_in_rules(workspace, capsys, monkeypatch):
    monkeypatch.delenv("PS019_POLICY_PACK_CONFIG")
    code, _, _ = run(capsys, "change-request", "new", "--out", "todo.json", "--stack", "acme/web/prod",
                     "--commit", COMMIT, "--author", "carol@example.com")
    assert code == 0
    code, out, _ = run(capsys, "change-request", "validate", "todo.json")
    assert code == 1 and "still the template placeholder" in out
    assert "test_evidence: required for a normal change in production (acme/web/prod)" in out
    code, _, _ = run(capsys, "change-request", "new", "--out", "long.json", "--ticket", "CHG-9", "--summary", "s",
                     "--owner", "web", "--author", "carol@example.com", "--stack", "acme/web/prod", "--commit",
                     COMMIT, "--rollback-plan", "r", "--monitoring-plan", "m", "--test-evidence", "t",
                     "--expires", "99999d")
    assert code == 0
    code, out, _ = run(capsys, "change-request", "validate", "long.json")
    assert code == 1 and "maximum lifetime 14 days" in out
    code, out, _ = run(capsys, "change-request", "validate", "cr.json")
    assert code == 0 and "checked with the gate's built-in defaults" in out


def test_approve_refuses_a_request_the_gate_would_refuse(workspace, capsys):
    run(capsys, "change-request", "new", "--out", "long.json", "--ticket", "CHG-9", "--summary", "s", "--owner", "web",
        "--author", "carol@example.com", "--stack", "acme/web/prod", "--commit", COMMIT, "--rollback-plan", "r",
        "--monitoring-plan", "m", "--test-evidence", "t", "--expires", "99999d")
    code, _, err = run(capsys, "approve", "long.json", "--key", "keys/alice_example.com.key", "--identity",
                       "alice@example.com")
    assert code == 2 and "refusing to sign" in err and "maximum lifetime" in err


def test_approve_refuses_an_untrusted_key_unless_explicitly_allowed(workspace, capsys, monkeypatch):
    code, out, _ = run(capsys, "keygen", "--out", "keys", "--identity", "mallory@example.com")
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/mallory_example.com.key", "--identity",
                       "mallory@example.com")
    assert code == 2 and "is not in gate.trusted_keys" in err
    monkeypatch.delenv("PS019_POLICY_PACK_CONFIG")
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/mallory_example.com.key", "--identity",
                       "mallory@example.com")
    assert code == 2 and "cannot check that your key is trusted" in err
    code, _, err = run(capsys, "approve", "cr.json", "--key", "keys/mallory_example.com.key", "--identity",
                       "mallory@example.com", "--allow-untrusted")
    assert code == 0 and "warning: no policy pack config" in err


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe{}", b'{"ticket": "A-1", "ticket": "A-2"}',
                                     b"[" * 100000 + b"]" * 100000])
def test_unusable_change_request_files_are_exit_2_with_one_line(workspace, capsys, content):
    (workspace / "bad.json").write_bytes(content)
    code, out, err = run(capsys, "change-request", "validate", "bad.json")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in out + err


@pytest.mark.parametrize("content", [b"{not json", b'{"ps019-settings": {"gate": {}, "gate": {}}}',
                                     b'{"ps019-settings": {"gate": {"ticketPattern": "("}}}', b"\xff"])
def test_unusable_pack_configs_are_exit_2_with_one_line(workspace, capsys, content):
    (workspace / "bad-config.json").write_bytes(content)
    code, out, err = run(capsys, "change-request", "validate", "cr.json", "--policy-pack-config", "bad-config.json")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in out + err
