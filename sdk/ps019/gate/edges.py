"""The gate's edges: the only functions that read the environment or files. The pack adapter calls
``gate_inputs(...)`` once per run and hands the result to the pure ``decide_gate``."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any, Mapping

from ps019.gate.change_request import load_change_request
from ps019.gate.ci import artifact_commit, detect_ci, plan_digest_from_env
from ps019.gate.decision import Deployer, GateInputs
from ps019.gate.breakglass import VerifiedIdentity


def deployer_from(sts_identity: str | None, ci_actor: str | None, environ: Mapping[str, str]) -> Deployer:
    """The verified deploy identity (STS caller ARN) when the identity control has one, else the CI actor, else the
    local OS user (recorded as an assertion: ``local-user`` never satisfies the approved path)."""
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
) -> GateInputs:
    ci = detect_ci(environ)
    artifact = artifact_commit(environ, ci)
    plan = plan_digest_from_env(environ)
    return GateInputs(
        stack_ref=stack_ref,
        tier=tier,
        tier_source=tier_source,
        dry_run=dry_run,
        now=now,
        change_request=load_change_request(environ, stack_config),
        deployer=deployer_from(sts_identity, ci.actor if ci else None, environ),
        ci=ci,
        artifact_commit=artifact.commit,
        artifact_source=artifact.source,
        artifact_problem=artifact.problem,
        plan_digest=plan.digest,
        plan_problem=plan.problem,
        break_glass=break_glass,
        unknown_treated_as=unknown_treated_as,
    )


def resolve_operator_identity(environ: Mapping[str, str] | None = None, identity_settings: Any = None) -> VerifiedIdentity:
    """Who is running a break-glass command, as verified -- not as claimed. The same identity the pack uses as the
    deployer (:func:`deployer_from`), so a grant opened here matches the ``pulumi up`` that follows:

    1. AWS credentials present: ``sts:GetCallerIdentity`` through ``ps019.aws.identity`` (only the pack config's
       ``identity.endpoints``; environment endpoint overrides are ignored) -> the caller ARN, e.g.
       ``arn:aws:sts::123456789012:assumed-role/BreakGlass/alice`` (session name included: it names the human).
    2. Otherwise, in CI, the CI system's actor. The bare ``CI=true`` generic markers are refused.
    3. Otherwise there is nothing to verify against and the command refuses (a local user name is an assertion).
    """
    import os

    from ps019.aws.identity import lookup_deploy_identity
    from ps019.aws.settings import IdentitySettings
    from ps019.errors import InputError
    from ps019.gate.ci import detect_ci

    env = os.environ if environ is None else environ
    settings = identity_settings or IdentitySettings()
    settings = settings.model_copy(update={"fetch_role_policies": False, "lookup": "on"})
    found = lookup_deploy_identity(settings, use_cache=False)
    if found.error is None and found.arn:
        return VerifiedIdentity(found.arn, "aws-sts", "sts:GetCallerIdentity", found.account)
    if found.error and not found.error.startswith("no AWS credentials"):
        raise InputError(f"AWS credentials are present but sts:GetCallerIdentity failed: {found.error}")
    ci = detect_ci(env)
    if ci is not None and ci.provider != "generic" and ci.actor:
        return VerifiedIdentity(ci.actor, "ci-env", f"{ci.provider} CI actor"
                                + (f" ({ci.repository})" if ci.repository else ""))
    raise InputError("cannot verify who you are: no AWS credentials (sts:GetCallerIdentity) and no CI identity "
                     "(GitHub Actions, GitLab CI, ...); break-glass needs a verified identity")
