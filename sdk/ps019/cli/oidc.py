"""``ps019 oidc verify`` (inside a CI job: is this job's ID token one the gate will accept?) and ``ps019 oidc jwks``
(fetch an issuer's JWKS once, to pin it in the pack config).

Exit status: 0 the token verifies (and, with ``--stack``, satisfies the stack tier's rules); 1 it does not; 2 unusable
input. The token itself is never printed.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import click

from ps019.errors import InputError


def _gate_and_environments(config_path: str | None):
    from ps019.cli.breakglass import CommandEnv

    env = CommandEnv(config_path, None)
    return env.gate, env.settings.section("environments")


@click.group("oidc")
def oidc() -> None:
    """CI identity proven by the CI provider's OIDC ID token (gate.oidc in the pack config)."""


@oidc.command("verify")
@click.option("--policy-pack-config", "config_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="the pack's config JSON (gate.oidc); default $PS019_POLICY_PACK_CONFIG")
@click.option("--stack", metavar="ORG/PROJECT/STACK", default=None,
              help="also check the claim rules of this stack's tier")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_cmd(config_path: str | None, stack: str | None, fmt: str) -> None:
    """Find this job's OIDC ID token as the pack will (PS019_ID_TOKEN, token file, GitHub's token request), verify
    it against the pinned JWKS, and print the claims the gate will use."""
    from ps019.gate.ci_identity import rule_problems
    from ps019.gate.settings import classify_environment
    from ps019.oidc import ci_identity

    gate, environments = _gate_and_environments(config_path)
    if not gate.oidc.issuers:
        raise InputError("no OIDC issuer is configured (ps019-settings.gate.oidc.issuers)")
    found = ci_identity(gate.oidc, os.environ, datetime.now(timezone.utc))
    problems: list[str] = [] if found.verified else [found.problem or "not verified"]
    tier = None
    if stack is not None and found.verified:
        parts = stack.split("/")
        if len(parts) != 3 or not all(parts):
            raise InputError(f"--stack {stack!r} is not ORG/PROJECT/STACK")
        tier, _ = classify_environment(*parts, None, None, environments)
        rules_tier = gate.rules_tier(tier, environments.unknown_treated_as)
        rules = gate.oidc.rules.get(rules_tier) or []
        if rules:
            problems += rule_problems(found, rules)
    if fmt == "json":
        click.echo(json.dumps({"verified": found.verified and not problems, "problems": problems, "tier": tier,
                               "token": found.evidence()}, indent=2, default=str))
    else:
        click.echo(f"source: {found.source}")
        if found.verified:
            click.echo(f"issuer {found.issuer} ({found.issuer_name}); subject {found.subject}")
            click.echo(f"repository {found.repository}  ref {found.ref} (protected: {found.ref_protected})  "
                       f"sha {found.sha}")
            click.echo(f"actor {found.actor}  environment {found.environment}  workflow {found.workflow}")
            click.echo(f"run {found.run_key}  jti {found.jti}  expires {found.expires_at}")
        for problem in problems:
            click.echo(f"problem: {problem}")
        if not problems:
            click.echo("ok: the gate will accept this job's identity" + (f" for {stack} ({tier})" if stack else ""))
    if problems:
        raise SystemExit(1)


@oidc.command("jwks")
@click.option("--issuer", required=True, metavar="URL", help="e.g. https://token.actions.githubusercontent.com")
def jwks_cmd(issuer: str) -> None:
    """Print an issuer's JWKS (from its discovery document) for pinning in gate.oidc.issuers[].jwksFile."""
    from ps019.gate.ci_identity import OidcIssuer
    from ps019.oidc.jwks import discovered_keys

    try:
        spec = OidcIssuer(name="fetch", issuer=issuer, audiences=["-"], discovery=True)
        keys = discovered_keys(spec)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        raise InputError(f"cannot fetch the JWKS of {issuer}: {exc}") from None
    click.echo(json.dumps({"keys": keys}, indent=2))
