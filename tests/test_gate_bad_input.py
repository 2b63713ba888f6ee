"""Bad input to the gate: garbage, oversized, non-UTF-8, deeply nested and duplicate-key change requests, tokens and
configs. The pack answers with a mandatory violation that says why (never PS019-PACK-000, never a pass); the CLI
answers with one line and a non-zero exit (never a traceback)."""

from __future__ import annotations

import json

import pytest

from ps019.cli import main
from ps019.oidc.local_issuer import LocalIssuer

BAD_DOCUMENTS = {
    "garbage": b"\x00\x01 definitely not a change request \x7f",
    "non-UTF-8": b"\xff\xfe{\x00}\x00",
    "deeply nested JSON": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "deeply nested YAML": b"a:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 3000)),
    "duplicate keys": b'{"ticket": "CHG-1", "ticket": "CHG-2"}',
    "not a mapping": b"[1, 2, 3]",
    "oversized": b'{"summary": "' + b"x" * 1_100_000 + b'"}',
}


@pytest.fixture(autouse=True)
def _restore_logging():
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _gather(tmp_path, environ):
    from ps019.pack import facts
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    raw = {"identity": {"lookup": "off"}, "evidence": {"store_url": f"sqlite:///{tmp_path / 'ev.db'}"}}
    env = {"PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "false",
           "XDG_DATA_HOME": str(tmp_path / "xdg"), **environ}
    return facts.gather(Run("ps019", "0.0.0", Settings(raw=raw), {}, {}, environ=env))


@pytest.mark.parametrize("name", sorted(BAD_DOCUMENTS))
def test_a_bad_change_request_is_a_mandatory_violation_with_its_reason(tmp_path, name):
    path = tmp_path / "cr.json"
    path.write_bytes(BAD_DOCUMENTS[name])
    f = _gather(tmp_path, {"PS019_CHANGE_REQUEST": str(path)})
    assert f.decision.blocked
    messages = " ".join(v.message for v in f.decision.violations["PS019-GATE-001"])
    assert str(path) in messages or "cr.json" in messages, messages
    assert not any(v.details.get("advisory") for v in f.decision.violations["PS019-GATE-001"])


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "\udcff" * 3, "e30." * 5000, "eyJhbGciOiJub25lIn0.e30."])
def test_a_bad_token_is_a_mandatory_violation_with_its_reason(tmp_path, token):
    from ps019.pack import facts
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    issuer = LocalIssuer("https://token.example.test")
    raw = {"identity": {"lookup": "off"}, "evidence": {"store_url": f"sqlite:///{tmp_path / 'ev.db'}"},
           "gate": {"oidc": {"issuers": [{"name": "ci", "issuer": issuer.issuer, "audiences": ["ps019"],
                                          "jwks": issuer.jwks()}],
                             "rules": {"production": [{"issuer": "ci", "repository": ["acme/web"]}]}}}}
    env = {"PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "true",
           "XDG_DATA_HOME": str(tmp_path / "xdg"), "PS019_ID_TOKEN": token}
    f = facts.gather(Run("ps019", "0.0.0", Settings(raw=raw), {}, {}, environ=env))
    text = " ".join(v.message for v in f.decision.violations["PS019-GATE-004"])
    assert f.decision.blocked and "the CI OIDC ID token does not count" in text


def run(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize("content", [b'{"ps019-settings": {"gate": {}}, "ps019-settings": {}}', b"\xff\xfe",
                                     b"[" * 50_000 + b"]" * 50_000, b"{not json"])
def test_cli_commands_refuse_an_unusable_pack_config_in_one_line(tmp_path, capsys, content):
    config = tmp_path / "config.json"
    config.write_bytes(content)
    for argv in (["break-glass", "list", "--policy-pack-config", str(config), "--store",
                  f"sqlite:///{tmp_path / 'ev.db'}"],
                 ["oidc", "verify", "--policy-pack-config", str(config)]):
        code, out, err = run(capsys, argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in out + err, (argv, err)


def test_oidc_verify_on_a_garbage_token_is_one_problem_line_and_exit_1(tmp_path, capsys, monkeypatch):
    issuer = LocalIssuer("https://token.example.test")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"ps019-settings": {"gate": {"oidc": {"issuers": [
        {"name": "ci", "issuer": issuer.issuer, "audiences": ["ps019"], "jwks": issuer.jwks()}]}}}}))
    monkeypatch.setenv("PS019_ID_TOKEN", "x" * 30000)
    code, out, err = run(capsys, ["oidc", "verify", "--policy-pack-config", str(config)])
    assert code == 1 and "problem: the ID token is malformed" in out and "xxxxxxxx" not in out + err
