"""The gate's edges: the only functions that read the environment or files. The pack adapter calls
``gate_inputs(...)`` once per run and hands the result to the pure ``decide_gate``."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any, Mapping

from ps019.gate.change_request import load_change_request
from ps019.gate.ci import _COMMIT, COMMIT_ENV, ArtifactFacts, artifact_commit, detect_ci, plan_digest_from_env
from ps019.gate.decision import Deployer, GateInputs


def deployer_from(sts_identity: str | None, ci_actor: str | None, environ: Mapping[str, str],
                  ci_identity: Any = None) -> Deployer:
    """The actor of a verified CI OIDC ID token, else the STS caller ARN, else the CI actor from the environment (an
    assertion), else the local OS user (an assertion: ``local-user`` never satisfies the approved path)."""
    if _usable(ci_identity) and ci_identity.actor:
        return Deployer(ci_identity.actor, "oidc", sts_arn=sts_identity, names=tuple(ci_identity.actor_names))
    if sts_identity:
        return Deployer(sts_identity, "sts")
    if ci_actor:
        return Deployer(ci_actor, "ci")
    user = environ.get("USER") or environ.get("USERNAME")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:  # no passwd entry in a container: the identity is simply unknown
            user = None
    return Deployer(user, "local-user" if user else None)


def _usable(ci_identity: Any) -> bool:
    return ci_identity is not None and ci_identity.verified and not ci_identity.replay_problem


def token_artifact(environ: Mapping[str, str], ci_identity: Any) -> ArtifactFacts:
    """The commit from the verified token's ``sha`` claim; ``PS019_GIT_COMMIT``, when set, must agree."""
    explicit = (environ.get(COMMIT_ENV) or "").strip().lower() or None
    if not _usable(ci_identity):
        return ArtifactFacts(None, "unknown", "the commit this run deploys is taken only from a verified CI OIDC ID "
                                              "token in this tier, and there is none")
    sha = (ci_identity.sha or "").lower()
    source = f"CI OIDC ID token sha ({ci_identity.issuer_name})"
    if not _COMMIT.match(sha):
        return ArtifactFacts(None, source, f"the CI OIDC ID token's sha {ci_identity.sha!r} is not a commit SHA")
    if explicit and explicit != sha:
        return ArtifactFacts(sha, source, f"{COMMIT_ENV}={explicit} disagrees with the CI OIDC ID token's sha {sha}: "
                                          "the artifact is ambiguous")
    return ArtifactFacts(sha, source)


def gate_inputs(
    *,
    stack_ref: str,
    tier: str,
    tier_source: str,
    dry_run: bool,
    now: datetime,
    environ: Mapping[str, str],
    stack_config: Mapping[str, str],
    sts_identity: str | None = None,
    break_glass: Any = None,
    unknown_treated_as: str = "production",
    ci_identity: Any = None,
    oidc_required: bool = False,
) -> GateInputs:
    """``oidc_required``: the tier has CI OIDC claim rules, so the CI facts, the commit and the deployer come from the
    verified token alone. A verified token is preferred to environment variables in every tier."""
    env_ci = detect_ci(environ)
    if oidc_required or _usable(ci_identity):
        ci = ci_identity.ci_run() if _usable(ci_identity) else None
        artifact = token_artifact(environ, ci_identity)
        ci_actor = None
    else:
        ci = env_ci
        artifact = artifact_commit(environ, ci)
        ci_actor = ci.actor if ci else None
    plan = plan_digest_from_env(environ)
    return GateInputs(
        stack_ref=stack_ref,
        tier=tier,
        tier_source=tier_source,
        dry_run=dry_run,
        now=now,
        change_request=load_change_request(environ, stack_config),
        deployer=deployer_from(sts_identity, ci_actor, environ, ci_identity),
        ci=ci,
        artifact_commit=artifact.commit,
        artifact_source=artifact.source,
        artifact_problem=artifact.problem,
        plan_digest=plan.digest,
        plan_problem=plan.problem,
        plan_data=plan.data,
        break_glass=break_glass,
        unknown_treated_as=unknown_treated_as,
        ci_identity=ci_identity,
    )
