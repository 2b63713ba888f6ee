"""The gate's edges: the only functions that read the environment or files. The pack adapter calls
``gate_inputs(...)`` once per run and hands the result to the pure ``decide_gate``."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any, Mapping

from ps019.gate.change_request import load_change_request
from ps019.gate.ci import artifact_commit, detect_ci, plan_digest_from_env
from ps019.gate.decision import Deployer, GateInputs


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
