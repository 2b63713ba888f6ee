"""``ps019 demo``: the whole product in one command, offline.

It runs the example stacks (examples/) through the bundled ps019 policy pack exactly as ``pulumi up --policy-pack``
would (the engine stand-in starts the real pack process and talks the Analyzer gRPC protocol to it), and tells six
stories: what is blocked and why (an over-privileged role, an unapproved production change), a clean development
deployment, an approved production change (signed approvals, CI on a protected branch), a break-glass emergency change
(grant, waived control, close, independent review), and what an auditor sees (the records, chain verification, a
reproducible sample, the HTML metrics report, and tamper detection on a copy of the store).

No cloud account, no Pulumi CLI, no backend: AWS is switched off for the pack processes (no endpoint, no credentials,
no instance metadata). Demo state lives in the evidence store (``--store``, else the default per-user store) and in a
demo work directory (keys, pack config, change request, report) under the ps019 data dir, printed at the start.

The demo doubles as a smoke test: every story states what it expects, and ``ps019 demo`` exits 1 naming the story
and the reason when one did not behave as expected (``--json-result FILE`` writes the structured outcome).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from ps019.errors import InputError

# Values for the examples' secret config (`secure:` in their Pulumi.<stack>.yaml), used by the demo, the committed
# exports and the tests. They are fake, and the tests prove none of them is ever printed.
DEMO_SECRET_CONFIG = {
    "web-service": {"web-service:dbPassword": "demo-only-Pg-7f3a9c2e51"},
    "deploy-role": {"deploy-role:deploySecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYdemoONLY01"},
}

PROD_STACK = "acme/web-service/prod"
PROD_EXPORT = "web-service/stack-export.prod.json"
TAMPER_STORY_FIELD = "change_request"  # the field the "attacker" rewrites in the copy of the store

# The people of the demo. Keys are generated once per data dir (demo/keys/) and trusted by the demo's pack config.
AUTHOR = "carol@example.com"
APPROVERS = (("alice@example.com", "approver"), ("bob@example.com", "approver"))
SECURITY_APPROVER = ("sam@example.com", "security")
OPERATOR = "olivia-oncall"  # a GitHub login: the actor the CI job's OIDC ID token names
REVIEWER = "rita@example.com"
CI_DEPLOYER = "deploy-bot"
DEMO_REPOSITORY = "acme/web-service"
KEYS = {  # file name -> (identity, roles)
    "carol": (AUTHOR, []),  # the author: no approving role, but her key signs her own request (role author)
    "alice": ("alice@example.com", ["approver"]),
    "bob": ("bob@example.com", ["approver"]),
    "sam": ("sam@example.com", ["approver", "security"]),
    "olivia": (OPERATOR, ["operator"]),
    "rita": (REVIEWER, ["reviewer"]),
}
# The hotfix's over-broad IAM statement is a high-severity PS019-IAM-001 finding. The operator names that control in
# the grant (a grant waives nothing implicitly); an overridden finding is a recorded, accepted risk, so it does not
# also need a security approver (PS019-GATE-005).
WAIVED_CONTROLS = ("PS019-IAM-001",)
SAMPLE_SEED = "ps019-demo"

# Each analysis story: (id, title, what it shows, run_analysis arguments relative to examples/).
STORIES = [
    (
        "over-privileged-role",
        "An over-privileged deploy role, deployed the way `pulumi up` does it",
        "The deploy-role program trusts every AWS principal, attaches AdministratorAccess, allows \"Action\": \"*\" "
        "and creates a long-lived access key. `pulumi up` runs a preview first; the preview fails, so the update "
        "never starts and nothing is created.",
        dict(program="deploy-role", stack="acme/deploy-role/dev", mode="up", config_file="Pulumi.dev.yaml"),
    ),
    (
        "unapproved-production",
        "A production change with no approval",
        "The web service itself is clean, but this is production and nobody approved the change. The gate decides "
        "on pulumi:pulumi:Stack, the first resource the engine analyzes, so the update stops before any provider "
        "is asked to change anything.",
        dict(state=PROD_EXPORT, stack=PROD_STACK, mode="update"),
    ),
    (
        "development",
        "The same service on its development stack",
        "Least-privilege IAM, encrypted private storage, a database password from secret config: the preview and "
        "the update both pass, and each leaves an evidence record (with the program's source digest, so production "
        "can later show the artifact was promoted through development).",
        dict(state="web-service/stack-export.dev.json", stack="acme/web-service/dev", mode="up", promoted=True),
    ),
]

_AWS_OFF = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull}
_AWS_DROP = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
             "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
# What a deployer presents to the pack: each story sets exactly what it presents, nothing leaks in from the shell.
_PS019_DROP = ("PS019_CHANGE_REQUEST", "PS019_BREAK_GLASS_GRANT", "PS019_GIT_COMMIT", "PS019_PLAN_FILE",
               "PS019_PROGRAM_DIR", "PS019_SOURCE_DIR", "PS019_POLICY_PACK_CONFIG")
# CI markers: the demo may itself run in CI (scripts/test on GitHub Actions); its stories must not inherit that.
_CI_DROP = ("CI", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "TF_BUILD", "JENKINS_URL", "BITBUCKET_BUILD_NUMBER")
_CI_DROP_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "BUILDKITE_", "CIRCLE_", "BITBUCKET_")


@dataclass
class StoryOutcome:
    """What one story expected, what happened, and the facts the test and the reader check."""

    id: str
    title: str
    expected: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def expect(self, condition: bool, problem: str) -> bool:
        if not condition:
            self.ok = False
            self.problems.append(problem)
        return condition


def examples_dir() -> Path:
    override = os.environ.get("PS019_EXAMPLES")
    if override:
        return Path(override)
    import ps019

    candidate = Path(ps019.__file__).resolve().parents[2] / "examples"
    if not (candidate / "web-service" / "Pulumi.yaml").is_file():
        raise InputError(f"the example stacks were not found (looked in {candidate}); run the demo from a checkout "
                         "of the ps019 repository or set PS019_EXAMPLES")
    return candidate


@contextlib.contextmanager
def _demo_environment(store_url: str) -> Iterator[None]:
    """The environment the pack processes inherit: AWS unreachable by construction, no CI markers, nothing
    presented, evidence to ``store_url``. Restored when the demo ends."""
    saved = dict(os.environ)
    try:
        for name in [*_AWS_DROP, *_PS019_DROP, *_CI_DROP]:
            os.environ.pop(name, None)
        for name in [k for k in os.environ if k.startswith(("AWS_ENDPOINT_URL_", *_CI_DROP_PREFIXES))]:
            os.environ.pop(name)
        os.environ.update(_AWS_OFF)
        os.environ["PS019_EVIDENCE_STORE"] = store_url
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _pack_env(extra: dict[str, str]) -> Iterator[None]:
    """Variables only the pack processes of one story see (the engine stand-in hands the pack our environment, as
    the Pulumi CLI does); the demo's own process never acts on them."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _resolve_store_url(store: str | None) -> str:
    from ps019.evidence.settings import resolve_store_url

    return resolve_store_url(store)


@click.command("demo")
@click.option("--store", metavar="URL",
              help="Evidence store for the demo's records (default: $PS019_EVIDENCE_STORE, else the per-user sqlite "
                   "store, see docs/evidence.md).")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Where the demo keeps its keys, pack config, change request and report (default: "
                   "<ps019 data dir>/demo).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for a pack to start or answer.")
@click.option("--json-result", "json_result", type=click.Path(dir_okay=False), default=None,
              help="Also write the structured outcome of every story to this file (JSON).")
def demo(store: str | None, work_dir: str | None, timeout: float, json_result: str | None) -> None:
    """Analyze the example stacks with the bundled ps019 pack, offline: blocked changes, an approved production
    change, a break-glass emergency change, and what the auditor sees. Exit 1 if a story did not behave as
    expected."""
    import ps019.cli.analyze as analyze_module

    analyze_module.configure_cli_logging()
    console = analyze_module._console()
    result = run_demo(console, store=store, work_dir=work_dir, timeout=timeout)
    if json_result:
        Path(json_result).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    if not result["ok"]:
        for story in result["stories"]:
            for problem in story["problems"]:
                console.print(f"[bold red]unexpected[/bold red] in story {story['id']}: {_esc(problem)}")
        raise SystemExit(1)


def run_demo(console: Any, *, store: str | None = None, work_dir: str | None = None,
             timeout: float = 60.0) -> dict[str, Any]:
    """Run every story; return ``{"ok", "store", "work_dir", "elapsed_s", "stories": [StoryOutcome as dict]}``."""
    import ps019.cli.analyze as analyze_module
    from ps019.engine import PackPool
    from ps019.evidence.settings import default_data_dir

    started = time.monotonic()
    since = datetime.now(timezone.utc).replace(microsecond=0)
    examples = examples_dir()
    store_url = _resolve_store_url(store)
    work = Path(work_dir).expanduser().resolve() if work_dir else default_data_dir() / "demo"
    run_id = datetime.now(timezone.utc).strftime("%y%m%d%H%M%S")
    console.print("[bold]ps019 demo[/bold]: the example stacks through the bundled ps019 policy pack, as "
                  "`pulumi up --policy-pack policypacks/ps019` runs it (no cloud account, no Pulumi CLI).")
    console.print(f"evidence store: {_esc(_safe_url(store_url))}")
    console.print(f"demo work dir (keys, pack config, change request, report): {_esc(str(work))}\n")

    outcomes: list[StoryOutcome] = []
    from ps019.oidc.local_issuer import LocalIssuer

    with _demo_environment(store_url), PackPool() as pool, LocalIssuer() as issuer:
        previous_pool = analyze_module.ENGINE_POOL
        analyze_module.ENGINE_POOL = pool
        try:
            setup = _DemoSetup.create(work, examples, run_id, store_url, issuer)
            for number, (story_id, title, story, spec) in enumerate(STORIES, start=1):
                outcome = StoryOutcome(story_id, title, _EXPECTED[story_id])
                env = {}
                if spec.get("promoted"):
                    env = {"PS019_PROGRAM_DIR": str(examples / "web-service"), "PS019_GIT_COMMIT": setup.commit}
                outcome = _guarded(outcome, lambda o: _analysis_story(  # noqa: B023 - called at once
                    console, number, title, story, spec, examples, timeout, env, o,
                    policy_pack_config=str(setup.work / "ps019-store-config.json")))
                outcomes.append(outcome)
            outcomes.append(_guarded(StoryOutcome("approved-production", "An approved production change",
                                                  _EXPECTED["approved-production"]),
                                     lambda o: _approved_change_story(console, 4, setup, examples, timeout, o)))
            outcomes.append(_guarded(StoryOutcome("break-glass", "Break-glass: an emergency change, then review",
                                                  _EXPECTED["break-glass"]),
                                     lambda o: _break_glass_story(console, 5, setup, examples, timeout, o)))
        finally:
            analyze_module.ENGINE_POOL = previous_pool
        outcomes.append(_guarded(StoryOutcome("auditor", "What the auditor sees", _EXPECTED["auditor"]),
                                 lambda o: _auditor_story(console, 6, setup, since, outcomes, o)))
    elapsed = time.monotonic() - started
    ok = all(o.ok for o in outcomes)
    console.rule("[bold]Summary[/bold]", align="left")
    for o in outcomes:
        mark = "[green]✓[/green]" if o.ok else "[red]✗[/red]"
        console.print(f"{mark} {_esc(o.title)}: {_esc(o.expected)}" + ("" if o.ok else
                                                                       f" [red](NOT as expected)[/red]"))
    console.print(f"\ndemo finished in {elapsed:.1f}s{'' if ok else ' with unexpected results'}. Next: "
                  "`ps019 analyze --help`, `ps019 controls`, `ps019 evidence list`, `ps019 break-glass list`.")
    return {"ok": ok, "store": _safe_url(store_url), "work_dir": str(work), "elapsed_s": round(elapsed, 2),
            "since": since.isoformat(), "stories": [asdict(o) for o in outcomes]}


_EXPECTED = {
    "over-privileged-role": "the preview fails on PS019-IAM-001..004, so the update never starts",
    "unapproved-production": "the update is blocked at pulumi:pulumi:Stack by PS019-GATE-001",
    "development": "the preview and the update pass",
    "approved-production": "preview and update pass as a normal change with the ticket, the author's signature and verified "
                           "approvers on record",
    "break-glass": "the direct change passes as an emergency change under the grant, the waived control is "
                   "overridden, the grant is closed and reviewed by someone else",
    "auditor": "every chain verifies, the sample is reproducible, the report is written, and an edit to a copy of "
               "the store is caught at the edited record",
}


def _guarded(outcome: StoryOutcome, body: Callable[[StoryOutcome], Any]) -> StoryOutcome:
    """A story that raises is a story that did not behave as expected: record why, go on with the next."""
    from ps019.errors import Ps019Error

    try:
        body(outcome)
    except Ps019Error as exc:
        outcome.expect(False, str(exc))
    except Exception as exc:  # noqa: BLE001 - the demo is a smoke test: report, never a traceback
        outcome.expect(False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return outcome


# --- set-up: keys, pack config, the artifact ------------------------------------------------------------------------


@dataclass
class _DemoSetup:
    work: Path
    run_id: str
    commit: str
    commit_source: str
    config_path: Path
    keys: dict[str, Any]  # name -> Ed25519PrivateKey
    store_url: str
    issuer: Any = None  # ps019.oidc.local_issuer.LocalIssuer playing GitHub Actions' OIDC token service

    @classmethod
    def create(cls, work: Path, examples: Path, run_id: str, store_url: str, issuer: Any) -> "_DemoSetup":
        from ps019.gate.signing import generate_private_key, load_private_key, public_key_text, write_keypair

        key_dir = work / "keys"
        keys, trusted = {}, []
        for name, (identity, roles) in KEYS.items():
            # Stable keys (made once per work dir): approvals and grants from earlier runs stay verifiable.
            if not (key_dir / f"{name}.key").exists():
                write_keypair(generate_private_key(), key_dir, name)
            keys[name] = load_private_key(key_dir / f"{name}.key")
            trusted.append({"public_key": public_key_text(keys[name]), "identity": identity, "roles": roles})
        config = {"ps019-settings": {
            "gate": {
                "trusted_keys": trusted,
                # Who deploys is proven by the CI job's OIDC ID token. The demo's issuer is a throwaway one on
                # loopback (its JWKS pinned here); in production it is https://token.actions.githubusercontent.com.
                "oidc": {"issuers": [{"name": "github", "issuer": issuer.issuer, "provider": "github",
                                      "audiences": ["ps019"], "jwks": issuer.jwks()}],
                         "rules": {"production": [{"issuer": "github", "repository": [DEMO_REPOSITORY],
                                                   "ref": ["refs/heads/main"], "ref_protected": True}]}},
            },
            # AWS is off in the demo: never ask STS who is deploying.
            "identity": {"lookup": "off"},
            # Production records go only to the store the pack config pins (docs/evidence.md).
            "evidence": {"store_url": store_url},
        }}
        config_path = work / "ps019-config.json"
        config_path.touch(mode=0o600)  # the store URL may carry credentials
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        # Stories 1-3 run with the pack's defaults, except the store (a production record goes only where the pack
        # config says).
        store_config = work / "ps019-store-config.json"
        store_config.touch(mode=0o600)
        store_config.write_text(json.dumps({"ps019-settings": {"evidence": {"store_url": store_url}}}, indent=2)
                                + "\n", encoding="utf-8")
        commit, source = _artifact_commit(examples)
        return cls(work, run_id, commit, source, config_path, keys, store_url, issuer)


def _artifact_commit(examples: Path) -> tuple[str, str]:
    try:
        out = subprocess.run(["git", "-C", str(examples), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
        commit = out.stdout.strip()
        if out.returncode == 0 and len(commit) == 40:
            return commit, "the checkout's HEAD"
    except (OSError, subprocess.SubprocessError):
        pass
    digest = hashlib.sha1(str(examples.resolve()).encode()).hexdigest()
    return digest, "not a git checkout: a stand-in commit ID"


def _github_env(issuer: Any, *, ref: str, sha: str, actor: str, run_id: str, protected: bool) -> dict[str, str]:
    """A simulated GitHub Actions job with ``permissions: id-token: write``: the variables the runner sets
    (docs.github.com, "Variables"), and the local issuer set up to answer the job's ID token request with this job's
    claims. Only the token counts; the GITHUB_* variables are there because a real runner sets them."""
    from ps019.oidc.local_issuer import github_claims

    issuer.job_claims = github_claims(repository=DEMO_REPOSITORY, ref=ref, sha=sha, actor=actor, run_id=run_id,
                                      protected=protected)
    return {"GITHUB_ACTIONS": "true", "GITHUB_REF": ref, "GITHUB_SHA": sha, "GITHUB_ACTOR": actor,
            "GITHUB_REPOSITORY": DEMO_REPOSITORY, "GITHUB_RUN_ID": run_id, "GITHUB_EVENT_NAME": "push",
            "GITHUB_SERVER_URL": "https://github.com", **issuer.github_job_env()}


# --- the analysis stories -------------------------------------------------------------------------------------------


def _run(examples: Path, spec: dict, timeout: float, policy_pack_config: str | None = None) -> dict:
    from ps019.cli.analyze import run_analysis

    kwargs: dict[str, Any] = {"stack": spec["stack"], "mode": spec["mode"], "timeout": timeout,
                              "policy_pack_config": policy_pack_config}
    project = spec["stack"].split("/")[1]
    if "program" in spec:
        kwargs["program"] = str(examples / spec["program"])
        kwargs["config_file"] = str(examples / spec["program"] / spec["config_file"])
        kwargs["secret_pairs"] = tuple(f"{k}={v}" for k, v in DEMO_SECRET_CONFIG.get(project, {}).items())
    else:
        state = Path(spec["state"])
        kwargs["state"] = str(state if state.is_absolute() else examples / state)
    return run_analysis(**kwargs)


def _mandatory(report: dict, phase: str | None = None) -> list[str]:
    return sorted({d["policy"] for p in report["passes"] if phase in (None, p["phase"]) for d in p["diagnostics"]
                   if d["level"] in ("mandatory", "remediate")})


def _pass_facts(report: dict) -> dict[str, Any]:
    return {"result": report["result"],
            "passes": {p["phase"]: {"passed": not (p["failed"] or p["counts"]["mandatory"] or p["blocked_at"]),
                                    "blocked_at": p["blocked_at"], "resources_analyzed": p["resources_analyzed"],
                                    "mandatory": sorted({d["policy"] for d in p["diagnostics"]
                                                         if d["level"] in ("mandatory", "remediate")})}
                       for p in report["passes"]},
            "skipped": [s["phase"] for s in report.get("skipped_passes", [])]}


def _analysis_story(console: Any, number: int, title: str, story: str, spec: dict, examples: Path, timeout: float,
                    env: dict[str, str], outcome: StoryOutcome, policy_pack_config: str | None = None) -> None:
    with _pack_env(env):
        report = _run(examples, spec, timeout, policy_pack_config)
    _print_story(console, number, title, story, spec, report)
    outcome.facts.update(_pass_facts(report))
    passes = outcome.facts["passes"]
    if outcome.id == "over-privileged-role":
        outcome.expect("preview" in passes and not passes["preview"]["passed"], "the preview did not fail")
        found = set(passes.get("preview", {}).get("mandatory", []))
        for control in ("PS019-IAM-001", "PS019-IAM-002", "PS019-IAM-003", "PS019-IAM-004"):
            outcome.expect(control in found, f"{control} did not report a mandatory violation")
        outcome.expect(outcome.facts["skipped"] == ["update"], "the update was not skipped after the failed preview")
    elif outcome.id == "unapproved-production":
        update = passes.get("update", {})
        outcome.expect(bool(update.get("blocked_at")) and str(update["blocked_at"]).endswith(
            "pulumi:pulumi:Stack::web-service-prod"), "the update was not blocked at the root stack resource")
        outcome.expect(update.get("resources_analyzed") == 1, "resources after the root stack were analyzed")
        outcome.expect("PS019-GATE-001" in update.get("mandatory", []), "PS019-GATE-001 did not block")
    elif outcome.id == "development":
        outcome.expect(set(passes) == {"preview", "update"} and all(p["passed"] for p in passes.values()),
                       "the preview and the update did not both pass")


def _latest(store_url: str, stack: str, kind: str, since: datetime) -> dict | None:
    """The newest record of ``kind`` on ``stack`` since ``since`` (read as `ps019 evidence list` reads)."""
    from ps019.cli.evidence import opened_store

    with opened_store(store_url) as store:
        found = [r.document for r in store.query(stack=stack, kind=kind, since=since)]
    found.sort(key=lambda d: d.get("sequence") or 0)
    return found[-1] if found else None


def _verified_approvers(record: dict, role_author: bool = False) -> list[str]:
    """Who verifiably approved (or, with ``role_author``, verifiably signed as the author)."""
    return sorted({a.get("identity") for a in record.get("approvals") or []
                   if a.get("kind") == "approval" and a.get("verified") and a.get("identity")
                   and (a.get("role") == "author") == role_author})


def _approved_change_story(console: Any, number: int, setup: _DemoSetup, examples: Path, timeout: float,
                           outcome: StoryOutcome) -> None:
    from ps019.gate.change_request import Artifact, ChangeRequest, sign_approval

    _rule(console, number, outcome.title)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    ticket = f"CHG-{setup.run_id}"
    request = ChangeRequest(
        ticket=ticket, change_class="normal", summary="Raise the web service's task memory", owner="team-web",
        author=AUTHOR, artifact=Artifact(git_commit=setup.commit), stacks=[PROD_STACK],
        test_evidence=f"https://github.com/acme/web-service/actions/runs/{setup.run_id}0",
        rollback_plan="https://wiki.example.com/web-service/rollback",
        monitoring_plan="https://wiki.example.com/web-service/dashboards",
        created_at=now, expires_at=now + timedelta(hours=48))
    # The author signs first (role author: production wants the author verified, not just named), then the approvers.
    for approver, role in ((AUTHOR, "author"), *APPROVERS, SECURITY_APPROVER):
        key = setup.keys[approver.split("@")[0]]
        request.approvals.append(sign_approval(request, key, approver=approver, role=role, signed_at=now))
    path = setup.work / "change-request.json"
    path.write_text(json.dumps(request.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    console.print(f"The security team trusts the demo's keys (made once in {_esc(str(setup.work / 'keys'))}) in the "
                  f"pack config {_esc(str(setup.config_path))} (gate.trusted_keys), which also pins the JWKS of the "
                  "CI's OIDC issuer and says production deploys come from acme/web-service's protected main "
                  "(gate.oidc).")
    console.print(f"Change request {ticket}, a normal change by {AUTHOR} for {PROD_STACK} at commit "
                  f"{setup.commit[:12]} ({setup.commit_source}), written to {_esc(str(path))}, signed by its author "
                  f"{AUTHOR} (role author) and approved by "
                  + ", ".join(f"{a} ({r})" for a, r in (*APPROVERS, SECURITY_APPROVER)) + ".")
    console.print(f"The deploy job runs `pulumi up` in GitHub Actions on refs/heads/main, with PS019_CHANGE_REQUEST "
                  "set and `permissions: id-token: write`: the pack asks the CI's OIDC issuer (here a throwaway one "
                  f"on {setup.issuer.issuer}) for the job's ID token and verifies it. The token, not GITHUB_* "
                  f"variables, says which repository, branch and commit this is and that {CI_DEPLOYER} runs it.")
    env = {**_github_env(setup.issuer, ref="refs/heads/main", sha=setup.commit, actor=CI_DEPLOYER,
                         run_id=setup.run_id + "1", protected=True),
           "PS019_CHANGE_REQUEST": str(path), "PS019_PROGRAM_DIR": str(examples / "web-service")}
    started = datetime.now(timezone.utc).replace(microsecond=0)
    with _pack_env(env):
        report = _run(examples, dict(state=PROD_EXPORT, stack=PROD_STACK, mode="up"), timeout,
                      str(setup.config_path))
    _print_passes(console, report)
    outcome.facts.update(_pass_facts(report), ticket=ticket, commit=setup.commit, change_request_file=str(path))
    passes = outcome.facts["passes"]
    outcome.expect(set(passes) == {"preview", "update"} and all(p["passed"] for p in passes.values()),
                   f"the preview and the update did not both pass (mandatory: {_mandatory(report)})")
    record = _latest(setup.store_url, PROD_STACK, "offline_update", started)
    if not outcome.expect(record is not None, "no update record for the approved change"):
        return
    approvers = _verified_approvers(record)
    promoted = not any(r.get("control_id") == "PS019-EVID-002" for r in record.get("policy_results") or [])
    actor = record.get("actor") or {}
    outcome.facts.update(record_id=record["record_id"], outcome=record.get("outcome"),
                         change_class=record.get("change_class"), change_request=record.get("change_request"),
                         verified_approvers=approvers, actor=actor, ci=record.get("ci") or {}, promoted=promoted)
    outcome.expect(record.get("outcome") == "succeeded", f"the update record's outcome is {record.get('outcome')}")
    outcome.expect(record.get("change_class") == "normal", f"change class {record.get('change_class')}, not normal")
    outcome.expect(record.get("change_request") == ticket, f"the record names ticket {record.get('change_request')}")
    outcome.expect({"alice@example.com", "bob@example.com"} <= set(approvers),
                   f"verified approvers on record: {approvers}")
    authors = _verified_approvers(record, role_author=True)
    outcome.facts["verified_author"] = authors
    outcome.expect(authors == [AUTHOR], f"the author's own signature on record: {authors}")
    console.print(f"  evidence record {record['record_id'][:8]}: update {record.get('outcome')}, change class "
                  f"[bold]{record.get('change_class')}[/bold], ticket [bold]{record.get('change_request')}[/bold], "
                  f"verified approvers: {', '.join(approvers)}; author {', '.join(authors) or '-'} (signed)")
    console.print(f"  deployer {_esc(str(actor.get('id')))} ({_esc(str(actor.get('verified_by')))}, "
                  f"verified={actor.get('verified')}); CI run {_esc(str((record.get('ci') or {}).get('run_url')))}")
    console.print("  " + ("promotion: the same program source was deployed to development first (PS019-EVID-002 "
                          "has nothing to report)" if promoted else
                          "PS019-EVID-002 (advisory): no promotion through a lower tier shown"))
    console.print()


def _hotfix_export(examples: Path, work: Path, incident: str) -> Path:
    """The production export as the on-call engineer's hotfix leaves it: the task role may now do s3:* on the
    assets bucket (broad, to repair objects during the incident). That is what PS019-IAM-001 flags."""
    document = json.loads((examples / PROD_EXPORT).read_text(encoding="utf-8"))
    statement = {"Sid": "IncidentAssetRepair", "Effect": "Allow", "Action": "s3:*",
                 "Resource": ["arn:aws:s3:::acme-web-service-prod-assets",
                              "arn:aws:s3:::acme-web-service-prod-assets/*"]}
    for resource in document["deployment"]["resources"]:
        if resource["urn"].endswith("::app-task-policy"):
            for side in ("inputs", "outputs"):
                policy = json.loads(resource[side]["policy"])
                policy["Statement"].append(statement)
                resource[side]["policy"] = json.dumps(policy)
    path = work / f"stack-export.prod.hotfix-{incident}.json"
    for old in work.glob("stack-export.prod.hotfix-*.json"):
        old.unlink()
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def _break_glass_story(console: Any, number: int, setup: _DemoSetup, examples: Path, timeout: float,
                       outcome: StoryOutcome) -> None:
    from ps019.cli.breakglass import CommandEnv, grant_rows, known_controls
    from ps019.gate.breakglass import close_grant, open_grant, review_grant
    from ps019.cli.operator_identity import resolve_operator_identity

    _rule(console, number, outcome.title)
    incident = f"INC-{setup.run_id}"
    hotfix_commit = hashlib.sha1(f"hotfix {incident}".encode()).hexdigest()
    ci_env = _github_env(setup.issuer, ref=f"refs/heads/hotfix/{incident.lower()}", sha=hotfix_commit,
                         actor=OPERATOR, run_id=setup.run_id + "2", protected=False)
    # Who opens the grant, as `ps019 break-glass open` finds out: STS when AWS credentials exist (never in the demo),
    # else the CI platform's actor -- the same identity the pack will see as the deployer.
    env = CommandEnv(str(setup.config_path), setup.store_url)
    identity = resolve_operator_identity(ci_env, gate_settings=env.gate)
    env.close()
    env = CommandEnv(str(setup.config_path), setup.store_url)
    try:
        _finish_interrupted_grants(console, env, setup, identity)
        grant = open_grant(env.store(), env.signer(), setup.keys["olivia"], identity, PROD_STACK,
                           reason="assets bucket objects corrupted; the web service serves 5xx", incident=incident,
                           ttl=timedelta(hours=1), waive=list(WAIVED_CONTROLS), gate_settings=env.gate,
                           settings=env.break_glass, known_controls=known_controls(),
                           environment_settings=env.settings.section("environments"))
    finally:
        env.close()
    console.print(f"Incident {incident}: {OPERATOR} (on call) opens break-glass grant [bold]{grant.grant_id}[/bold] "
                  f"for {PROD_STACK} with an operator key, identified as {_esc(identity.id)} "
                  f"({_esc(identity.verified_by)}), for 1h. It waives exactly "
                  f"{' and '.join(WAIVED_CONTROLS)}: the hotfix's IAM finding and the escalation to a security "
                  "approver it triggers (nobody from security is awake; the review afterwards is the check).")
    hotfix = _hotfix_export(examples, setup.work, incident)
    console.print(f"The hotfix (task role gets s3:* on the assets bucket, {_esc(hotfix.name)}) is deployed "
                  f"directly from refs/heads/hotfix/{incident.lower()} with no change request, "
                  f"PS019_BREAK_GLASS_GRANT={grant.grant_id}.")
    started = datetime.now(timezone.utc).replace(microsecond=0)
    with _pack_env({**ci_env, "PS019_BREAK_GLASS_GRANT": grant.grant_id}):
        report = _run(examples, dict(state=str(hotfix), stack=PROD_STACK, mode="up"), timeout,
                      str(setup.config_path))
    _print_passes(console, report, show_advisory=(*WAIVED_CONTROLS, "PS019-GATE-050"))
    outcome.facts.update(_pass_facts(report), grant_id=grant.grant_id, incident=incident, operator=grant.operator)
    passes = outcome.facts["passes"]
    outcome.expect(set(passes) == {"preview", "update"} and all(p["passed"] for p in passes.values()),
                   f"the emergency change did not pass (mandatory: {_mandatory(report)})")
    overridden = [{**d, "phase": p["phase"]} for p in report["passes"] for d in p["diagnostics"]
                  if d["policy"] in WAIVED_CONTROLS]
    outcome.facts["overridden"] = [{"control": d["policy"], "phase": d["phase"], "level": d["level"],
                                    "urn": d["urn"],
                                    "under_grant": f"overridden under grant {grant.grant_id}" in d["message"]}
                                   for d in overridden]
    outcome.expect(any(d["policy"] == WAIVED_CONTROLS[0] for d in overridden) and
                   all(d["level"] == "advisory" and f"overridden under grant {grant.grant_id}" in d["message"]
                       for d in overridden),
                   f"{WAIVED_CONTROLS[0]} was not reported as overridden under grant {grant.grant_id}")
    record = _latest(setup.store_url, PROD_STACK, "offline_update", started)
    if outcome.expect(record is not None, "no update record for the emergency change"):
        bg = record.get("break_glass") or {}
        waived = [r for r in record.get("policy_results") or [] if r.get("waived_by") == grant.grant_id]
        outcome.facts.update(record_id=record["record_id"], change_class=record.get("change_class"),
                             break_glass=bg.get("ref_id"), break_glass_verified=bg.get("verified"),
                             waived_results=[r.get("control_id") for r in waived])
        outcome.expect(record.get("change_class") == "emergency",
                       f"change class {record.get('change_class')}, not emergency")
        outcome.expect(bg.get("ref_id") == grant.grant_id and bg.get("verified") is True,
                       f"the record's break_glass reference is {bg.get('ref_id')} (verified={bg.get('verified')})")
        console.print(f"  evidence record {record['record_id'][:8]}: update {record.get('outcome')}, change class "
                      f"[bold]{record.get('change_class')}[/bold], break_glass {bg.get('ref_id')} "
                      f"(verified={bg.get('verified')}), {len(waived)} result(s) waived_by the grant")
    env = CommandEnv(str(setup.config_path), setup.store_url)
    try:
        # The operator closes the grant with the key that opened it (from anywhere: no CI job needed).
        close = close_grant(env.store(), env.signer(), setup.keys["olivia"], None, grant.grant_id,
                            gate_settings=env.gate, settings=env.break_glass,
                            notes="objects restored from versioning; s3:* statement to be removed in CHG follow-up")
        review = review_grant(env.store(), env.signer(), setup.keys["rita"], REVIEWER, grant.grant_id,
                              notes="root cause: a lifecycle rule expired current objects; rule fixed, alert added",
                              links=[f"https://wiki.example.com/pir/{incident}"], gate_settings=env.gate,
                              settings=env.break_glass)
        rows = [r for r in grant_rows(env, PROD_STACK, datetime.now(timezone.utc))
                if r["grant_id"] == grant.grant_id]
    finally:
        env.close()
    console.print(f"  {OPERATOR} closes the grant at {_ts(close.closed_at)}; {REVIEWER} (a different person, own "
                  f"key) records the post-implementation review at {_ts(review.reviewed_at)}.")
    console.print("  `ps019 break-glass list` now shows:")
    for row in rows:
        console.print(f"    {row['grant_id']}  {row['stack']}  operator {_esc(row['operator'])}  "
                      f"state [bold]{row['state']}[/bold]  closed {row['closed_at']}  incident {row['incident']}  "
                      f"waived {', '.join(row['waived_controls']) or '-'}  review: {_esc(row['review'])}")
    row = rows[0] if rows else {}
    outcome.facts["status"] = {k: row.get(k) for k in ("state", "review", "reviewer", "problems")}
    outcome.expect(row.get("state") == "closed", f"grant state {row.get('state')}, not closed")
    outcome.expect(row.get("reviewer") == REVIEWER, f"review recorded by {row.get('reviewer')}")
    console.print()


def _finish_interrupted_grants(console: Any, env: Any, setup: _DemoSetup, identity: Any) -> None:
    """A demo run interrupted after opening its grant leaves it unreviewed; once that review is overdue, break-glass
    on the stack is blocked (as it should be). Close and review such demo grants first, on the record, so the demo
    can be run again and again."""
    from ps019.gate.breakglass import close_grant, grant_statuses, load_break_glass_records, review_grant

    now = datetime.now(timezone.utc)
    store = env.store()
    for status in grant_statuses(load_break_glass_records(store, PROD_STACK), now, env.gate, env.break_glass):
        if status.grant.operator != OPERATOR or status.review is not None or not status.trusted:
            continue
        if status.closed_at is None:
            close_grant(store, env.signer(), setup.keys["olivia"], None, status.grant.grant_id,
                        gate_settings=env.gate, settings=env.break_glass, notes="left open by an interrupted demo run")
        review_grant(store, env.signer(), setup.keys["rita"], REVIEWER, status.grant.grant_id,
                     notes="demo clean-up: grant left unreviewed by an interrupted demo run", links=[],
                     gate_settings=env.gate, settings=env.break_glass)
        console.print(f"[dim](closed and reviewed {status.grant.grant_id}, left open by an interrupted earlier demo "
                      "run)[/dim]")


# --- the auditor ----------------------------------------------------------------------------------------------------


def _auditor_story(console: Any, number: int, setup: _DemoSetup, since: datetime, outcomes: list[StoryOutcome],
                   outcome: StoryOutcome) -> None:
    from ps019.cli.evidence import opened_store, query_filters, summary, trusted_keys
    from ps019.evidence.audit import SAMPLE_ALGORITHM, sample, sample_rank
    from ps019.evidence.chain import verify_store
    from ps019.evidence.report import compute_metrics, load_documents, render_html

    _rule(console, number, outcome.title)
    keys = trusted_keys(())  # as `ps019 evidence verify` without --public-key: the local evidence key
    filters = query_filters(None, None, None, None, None, since.isoformat(), None, False, False)
    with opened_store(setup.store_url) as store:
        rows = [summary(r.document) for r in store.query(**filters)]  # `ps019 evidence list --since ...`
        verification = verify_store(store, keys)  # `ps019 evidence verify`
        # The demo's passes are offline (the stand-in drove them), so their records have offline kinds and no
        # auditor query counts them as deployments; the demo samples and reports them as the rehearsal they are.
        population = [r.document for r in store.query(environment="production", kind="offline_update",
                                                      since=since)]
        documents = load_documents(store, since, None)  # `ps019 report --since ...`
    console.print(f"`ps019 evidence list --since {since.isoformat()}`: {len(rows)} record(s) this demo run wrote, "
                  "newest first:")
    for r in rows:
        console.print(f"  {r['started_at']}  {r['kind']:<18} {r['stack']:<22} {r['environment'] or '':<11} "
                      f"{r['change_class'] or '-':<9} {r['outcome'] or '':<10} {_esc(r['actor'] or '-'):<14} "
                      f"viol. {r['violations']:<2} {r['record_id'][:8]}"
                      + (f"  grant {r['break_glass']}" if r["break_glass"] else ""))
    kinds = sorted({r["kind"] for r in rows})
    outcome.facts.update(records=len(rows), kinds=kinds)
    for kind in ("offline_preview", "offline_update", "offline_blocked", "break_glass_open", "break_glass_close",
                 "break_glass_review"):
        outcome.expect(kind in kinds, f"no {kind} record from this run")
    mark = "[green]✓[/green]" if verification.ok else "[red]✗[/red]"
    console.print(f"{mark} `ps019 evidence verify`: {_esc(verification.summary())} (every DSSE signature, every "
                  "hash link, each chain against the store's recorded head)")
    outcome.facts["verify"] = {"ok": verification.ok, "records_checked": verification.records_checked,
                               "chains": len(verification.chains)}
    outcome.expect(verification.ok, f"the store does not verify: {verification.summary()}")

    chosen = sample(population, 2, SAMPLE_SEED)
    again = sample(list(reversed(population)), 2, SAMPLE_SEED)
    outcome.facts["sample"] = [d["record_id"] for d in chosen]
    outcome.expect(len(chosen) == min(2, len(population)) and chosen == again, "the sample is not reproducible")
    console.print("The demo's passes ran offline (the engine stand-in, not `pulumi up`), so their records have the "
                  "kinds offline_preview, offline_update and offline_blocked: no auditor query counts them as "
                  "deployments. Below, the auditor's tools are pointed at them explicitly, as a rehearsal.")
    console.print(f"`ps019 evidence sample --kind offline_update --n 2 --seed {SAMPLE_SEED} --since ...` over "
                  f"{len(population)} production offline update(s) ({SAMPLE_ALGORITHM}):")
    for d in chosen:
        console.print(f"  rank {sample_rank(SAMPLE_SEED, d['record_id'])[:12]}…  record {d['record_id'][:8]}  "
                      f"{d.get('change_class')} change  ticket {d.get('change_request') or '-'}  "
                      f"approvers {', '.join(_verified_approvers(d)) or '-'}  "
                      f"grant {(d.get('break_glass') or {}).get('ref_id') or '-'}")

    metrics = compute_metrics(documents, since=since, until=None, include_offline=True)
    report_path = setup.work / "ps019-report.html"
    report_path.write_text(render_html(metrics, store=_safe_url(setup.store_url)), encoding="utf-8")
    outcome.facts["report"] = {"path": str(report_path), "production_updates": metrics.production_updates,
                               "emergency_updates": metrics.emergency_updates, "gate_bypasses": metrics.gate_bypasses,
                               "evidence_completeness": metrics.evidence_completeness,
                               "missing_fields": metrics.missing_field_counts}
    outcome.expect(metrics.production_updates >= 2 and metrics.emergency_updates >= 1,
                   "the report does not count the demo's production and emergency updates")
    missing = ", ".join(f"{k} ({v})" for k, v in metrics.missing_field_counts.items()) or "none"
    console.print(f"`ps019 report --include-offline --format html`: written to [bold]{_esc(str(report_path))}[/bold] — "
                  f"{metrics.production_updates} production update(s), {metrics.emergency_updates} emergency, "
                  f"{metrics.gate_bypasses} gate bypass(es) (grants, break-glass deployments, blocked attempts), "
                  f"evidence completeness {_pct(metrics.evidence_completeness)}; missing: {_esc(missing)}")
    from ps019.evidence.audit import missing_fields

    approved_id = next((o.facts.get("record_id") for o in outcomes if o.id == "approved-production"), None)
    approved = next((d for d in documents if approved_id and d.get("record_id") == approved_id), None)
    gaps = missing_fields(approved) if approved is not None else ["(no record of the approved change)"]
    outcome.facts["approved_change_missing_fields"] = gaps
    if not gaps:
        console.print(f"  the approved production change (record {approved_id[:8]}) is evidence-complete: its deployer "
                      f"{_esc(str((approved.get('actor') or {}).get('id')))} is verified by the CI job's OIDC ID "
                      "token, and ticket, approvals, CI run, artifact and plans are all on record")
    outcome.expect(not gaps, f"the approved production change's record is not evidence-complete: missing {gaps}")
    if metrics.missing_field_counts:
        console.print("  [dim](the emergency change has no change request: break-glass is recorded as a gap until "
                      "its post-implementation review closes it)[/dim]")

    target = next((o.facts.get("record_id") for o in outcomes if o.id == "approved-production"), None)
    if not outcome.expect(bool(target), "no approved production record to tamper with (story 4 failed)"):
        return
    _tamper_story(console, setup, target, keys, outcome)
    console.print()


def _tamper_story(console: Any, setup: _DemoSetup, record_id: str, keys: dict, outcome: StoryOutcome) -> None:
    """An attacker with write access to the store's file rewrites one field of one record in a COPY of the store."""
    from ps019.evidence import open_store
    from ps019.evidence.chain import verify_chain, verify_store

    if setup.store_url.startswith("sqlite:"):
        source = Path("/" + setup.store_url[len("sqlite:"):].split("?", 1)[0].lstrip("/"))
        copy_path = setup.work / "tampered-copy-of-evidence.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy_path}{suffix}").unlink(missing_ok=True)
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
                contextlib.closing(sqlite3.connect(str(copy_path))) as dst:
            src.backup(dst)  # a consistent copy, WAL included; the user's store is only read
            row = dst.execute("SELECT document FROM records WHERE record_id = ?", (record_id,)).fetchone()
            document = json.loads(row[0])
            original = document.get(TAMPER_STORY_FIELD)
            document[TAMPER_STORY_FIELD] = "CHG-1"
            # The store's triggers refuse UPDATE; whoever can write the file can drop them (they are a guard only).
            dst.execute("DROP TRIGGER records_no_update")
            dst.execute("UPDATE records SET document = ? WHERE record_id = ?",
                        (json.dumps(document, separators=(",", ":")), record_id))
            dst.commit()
        with contextlib.closing(open_store(f"sqlite://{copy_path}?mode=ro")) as tampered:
            result = verify_store(tampered, keys, PROD_STACK)
        where = f"a copy of the store ({copy_path}), its UPDATE trigger dropped,"
    else:
        # Not a file we can copy: tamper with the chain as read, in memory (same verification code).
        with contextlib.closing(open_store(setup.store_url)) as store:
            records = list(store.iter_all(PROD_STACK))
            heads = {k: v for k, v in store.heads().items() if k == PROD_STACK}
        edited = []
        original = None
        for stored in records:
            if stored.record_id == record_id:
                document = copy.deepcopy(stored.document)
                original = document.get(TAMPER_STORY_FIELD)
                document[TAMPER_STORY_FIELD] = "CHG-1"
                stored = type(stored)(document=document, envelope=stored.envelope, head=stored.head)
            edited.append(stored)
        result = verify_chain(edited, keys, heads)
        where = "an in-memory copy of the chain"
    failure = result.first_failure
    outcome.facts["tamper"] = {"record_id": record_id, "field": TAMPER_STORY_FIELD, "from": original, "to": "CHG-1",
                               "verify_ok": result.ok, "first_broken": failure.record_id if failure else None,
                               "code": failure.code if failure else None}
    console.print(f"Tamper test: in {_esc(where)} the {TAMPER_STORY_FIELD} of record {record_id[:8]} is rewritten "
                  f"from {original} to CHG-1.")
    mark = "[green]✓[/green]" if not result.ok else "[red]✗[/red]"
    console.print(f"{mark} `ps019 evidence verify` on the copy: {_esc(result.summary())}")
    outcome.expect(not result.ok, "the edited copy still verifies")
    outcome.expect(failure is not None and failure.record_id == record_id,
                   f"verify named {failure.record_id if failure else None}, not the edited record {record_id}")


# --- output helpers -------------------------------------------------------------------------------------------------


def _rule(console: Any, number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {_esc(title)}[/bold]", align="left")


def _print_story(console: Any, number: int, title: str, story: str, spec: dict, report: dict) -> None:
    source = spec.get("program") or spec.get("state")
    kind = "program" if "program" in spec else "stack export"
    _rule(console, number, title)
    console.print(f"[dim]{kind} examples/{_esc(source)} → stack {_esc(report['stack'])}[/dim]")
    console.print(_esc(story))
    _print_passes(console, report)
    console.print()


def _print_passes(console: Any, report: dict, show_advisory: tuple[str, ...] = ()) -> None:
    controls = report.get("controls") or {}
    for pass_ in report["passes"]:
        counts = pass_["counts"]
        if pass_["blocked_at"]:
            verdict = (f"[bold red]BLOCKED[/bold red] at {_esc(_name(pass_['blocked_at']))}: "
                       f"{pass_['resources_analyzed']} resource(s) analyzed, nothing after it")
        elif pass_["failed"] or counts["mandatory"]:
            verdict = f"[bold red]FAILED[/bold red]: {counts['mandatory']} mandatory violation(s)"
        else:
            verdict = f"[bold green]PASSED[/bold green]: {pass_['resources_analyzed']} resources analyzed"
        console.print(f"  [bold]{pass_['phase']}[/bold]{' (dry run)' if pass_['dry_run'] else ''}: {verdict}"
                      + (f", {counts['advisory']} advisory" if counts["advisory"] else ""))
        for d in pass_["diagnostics"]:
            blocking = d["level"] in ("mandatory", "remediate")
            if not blocking and d["policy"] not in show_advisory:
                continue
            mark = "[red]✗[/red]" if blocking else "[yellow]![/yellow]"
            console.print(f"    {mark} [bold]{_esc(d['policy'])}[/bold] ({d['level']}) on {_esc(_name(d['urn']))} "
                          f"[dim]({_esc(d['resource_type'])})[/dim]")
            console.print(f"      {_esc(_specific(d['message']))}")
            clause = (controls.get(d["policy"]) or {}).get("clause")
            if clause and blocking:
                console.print(f"      [dim]{_esc(clause)}[/dim]")
    for skipped in report.get("skipped_passes", []):
        console.print(f"  [bold]{skipped['phase']}[/bold]: [yellow]not started[/yellow] ({_esc(skipped['reason'])})")


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def _ts(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _specific(message: str, limit: int = 400) -> str:
    """pulumi_policy sends ``description\\nmessage``; the second part is what this resource did wrong. A long message
    is shortened in what it found; its ``Fix:`` part and a waiver's suffix ("(overridden under grant BG-…)") are
    kept whole."""
    text = message.split("\n", 1)[1] if "\n" in message else message
    text = " ".join(text.split())
    waiver = re.search(r" \((overridden under grant|waived by exception) [^()]+\)$", text)
    suffix = waiver.group(0) if waiver else ""
    body = text[: len(text) - len(suffix)]
    if len(body) <= limit:
        return body + suffix
    # Shorten what was found, never how to fix it: the fix is what the reader acts on.
    fix_at = body.find(" Fix: ")
    if fix_at > 0:
        found, fix = body[:fix_at], body[fix_at:]
        room = max(limit - len(fix), 160)
        if len(found) > room:
            found = found[: room - 1].rstrip() + "…"
        return found + fix + suffix
    return body[: limit - 1].rstrip() + "…" + suffix


def _safe_url(url: str) -> str:
    """A store URL without credentials (postgresql://user:password@host/db)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
