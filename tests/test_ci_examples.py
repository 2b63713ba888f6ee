"""The CI jobs in examples/ci/ (shown in docs/ci-approvals-guide.md), run against a throwaway local OIDC issuer: the
`ps019 oidc verify` step of each job, with the job's token obtained the way that CI provides it (GitHub: the
ACTIONS_ID_TOKEN_REQUEST_URL exchange; GitLab: the `id_tokens:` variable), accepts the deploy job and refuses a job
on another branch."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from ps019.cli import main
from ps019.oidc.local_issuer import LocalIssuer, github_claims, gitlab_claims

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ci"
SHA = "5" * 40


@pytest.fixture(autouse=True)
def _restore_logging():
    import structlog

    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _commands(lines, prefix="ps019 oidc verify"):
    out = []
    for line in lines:
        for part in str(line).splitlines():
            if part.strip().startswith(prefix):
                out.append(shlex.split(part.strip())[1:])
    return out


def _policy(tmp_path, issuer: LocalIssuer, name: str) -> None:
    """examples/ci/policy.json with the named issuer replaced by the local one (its JWKS pinned in a file)."""
    config = json.loads((EXAMPLES / "policy.json").read_text())
    for spec in config["ps019-settings"]["gate"]["oidc"]["issuers"]:
        (tmp_path / spec["jwksFile"]).write_text(json.dumps(issuer.jwks() if spec["name"] == name else {"keys": []}))
        if spec["name"] == name:
            spec["issuer"] = issuer.issuer
    (tmp_path / "policy.json").write_text(json.dumps(config))


def run(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().out


def test_the_github_actions_job_is_accepted_and_a_feature_branch_job_is_not(tmp_path, monkeypatch, capsys):
    workflow = yaml.safe_load((EXAMPLES / "github-deploy-prod.yml").read_text())
    assert workflow["permissions"]["id-token"] == "write"
    job = workflow["jobs"]["up"]
    commands = _commands(step.get("run", "") for step in job["steps"])
    assert commands, "the workflow runs `ps019 oidc verify`"
    monkeypatch.chdir(tmp_path)
    with LocalIssuer() as issuer:
        _policy(tmp_path, issuer, "github")
        for key, value in issuer.github_job_env().items():
            monkeypatch.setenv(key, value)
        issuer.job_claims = github_claims(repository="acme/web-service", ref="refs/heads/main", sha=SHA,
                                          actor="deploy-bot", run_id="1", environment=job["environment"],
                                          workflow="deploy-prod.yml")
        code, out = run(capsys, commands[0])
        assert code == 0, out
        assert "ok: the gate will accept this job's identity for acme/web-service/prod" in out
        issuer.job_claims = {**issuer.job_claims, "ref": "refs/heads/feature"}
        code, out = run(capsys, commands[0])
        assert code == 1 and "ref refs/heads/feature is not one of" in out


def test_the_gitlab_job_is_accepted_and_a_job_of_another_project_is_not(tmp_path, monkeypatch, capsys):
    job = yaml.safe_load((EXAMPLES / "gitlab-deploy-prod.yml").read_text())["deploy-prod"]
    (variable, spec), = job["id_tokens"].items()
    assert variable == "PS019_ID_TOKEN"  # the variable the gate reads by default (gate.oidc.token.variable)
    commands = _commands(job["script"])
    monkeypatch.chdir(tmp_path)
    issuer = LocalIssuer("https://gitlab.example.test")
    _policy(tmp_path, issuer, "gitlab")
    claims = gitlab_claims(project_path="acme/web-service", ref="main", sha=SHA, user_login="deployer",
                           user_email="deployer@example.com", pipeline_id="3", job_id="4",
                           environment=job["environment"])
    monkeypatch.setenv(variable, issuer.mint({**claims, "aud": spec["aud"]}))
    code, out = run(capsys, commands[0])
    assert code == 0, out
    monkeypatch.setenv(variable, issuer.mint({**claims, "aud": spec["aud"], "project_path": "evil/web-service"}))
    code, out = run(capsys, commands[0])
    assert code == 1 and "repository evil/web-service" in out
    assert issuer.mint  # never printed: the token is not in the output
    assert "eyJ" not in out


@pytest.mark.parametrize("name", ["github-deploy-prod.yml", "gitlab-deploy-prod.yml"])
def test_the_guide_shows_the_tested_files(name):
    guide = (Path(__file__).resolve().parents[1] / "docs" / "ci-approvals-guide.md").read_text()
    body = "\n".join(line for line in (EXAMPLES / name).read_text().splitlines() if not line.startswith("#"))
    assert body.strip() in guide
