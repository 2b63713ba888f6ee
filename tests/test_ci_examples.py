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
        # The example pins /etc/ps019/<issuer>-jwks.json; here the same file name under tmp_path.
        jwks = tmp_path / spec["jwksFile"].rsplit("/", 1)[-1]
        jwks.write_text(json.dumps(issuer.jwks() if spec["name"] == name else {"keys": []}))
        spec["jwksFile"] = str(jwks)
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


def test_a_relative_jwks_file_is_refused_before_the_deploy_not_during_it(tmp_path, monkeypatch, capsys):
    """The engine runs the pack in the policy pack's directory, not where `pulumi up` (or the `ps019 oidc verify` step
    before it) was started. A relative jwksFile therefore named the workspace's file for the check step and a missing
    file under policypacks/ps019 for the pack: the check said "ok", then every production `pulumi up` was refused
    (PS019-GATE-004: jwks_file github-jwks.json: No such file or directory). A relative path is now a config error
    that both the check step and `ps019 pack validate-config` report."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "github-jwks.json").write_text(json.dumps({"keys": []}))
    config = {"ps019-settings": {"gate": {"oidc": {"issuers": [
        {"name": "github", "issuer": "https://token.actions.githubusercontent.com", "provider": "github",
         "audiences": ["ps019"], "jwksFile": "github-jwks.json"}]}}}}
    (tmp_path / "policy.json").write_text(json.dumps(config))
    for argv, status in ((["pack", "validate-config", "policy.json"], 1),
                         (["oidc", "verify", "--policy-pack-config", "policy.json", "--stack", "acme/web-service/prod"],
                          2)):
        with pytest.raises(SystemExit) as info:
            main(argv)
        said = capsys.readouterr()
        assert info.value.code == status and "jwksFile must be an absolute path" in said.out + said.err, said
    assert all(spec["jwksFile"].startswith("/")
               for spec in json.loads((EXAMPLES / "policy.json").read_text())["ps019-settings"]["gate"]["oidc"]
               ["issuers"])


def test_the_jobs_install_the_packs_virtualenv_and_have_the_pulumi_cli():
    """PulumiPolicy.yaml declares `virtualenv: venv`, and the Pulumi CLI refuses to run a pack whose declared
    virtualenv does not exist ("The 'virtualenv' option ... doesn't exist"): it never creates one for a local pack.
    `pip install -e .` installs into the runner's Python, which the pack does not use. Both jobs must create the pack's
    venv before `pulumi up`, and the GitLab job's image must have the `pulumi` CLI it calls."""
    root = EXAMPLES.parents[1]
    venv = yaml.safe_load((root / "policypacks" / "ps019" / "PulumiPolicy.yaml").read_text())["runtime"]["options"][
        "virtualenv"]
    wanted = f"policypacks/ps019/{venv}"
    steps = yaml.safe_load((EXAMPLES / "github-deploy-prod.yml").read_text())["jobs"]["up"]["steps"]
    deploy = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions"))
    assert any(wanted in str(s.get("run", "")) and "requirements.txt" in str(s.get("run", ""))
               for s in steps[:deploy])
    job = yaml.safe_load((EXAMPLES / "gitlab-deploy-prod.yml").read_text())["deploy-prod"]
    # GitLab refuses a job whose script has anything but strings (an unquoted `"x": y` line parses as a mapping).
    assert all(isinstance(line, str) for line in job["script"]), job["script"]
    up = next(i for i, line in enumerate(job["script"]) if line.startswith("pulumi up"))
    assert any(wanted in line and "requirements.txt" in line for line in job["script"][:up])
    assert job["image"].startswith("pulumi/")  # Pulumi's own images carry the CLI; python:3.11 does not
