"""Who runs a break-glass command, verified by the edges that can verify it (CI OIDC, AWS STS).

It lives with the CLI, the outermost layer: the gate's core only receives the ``VerifiedIdentity`` it produces.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Mapping

from ps019.aws.identity import lookup_deploy_identity
from ps019.aws.settings import IdentitySettings
from ps019.errors import InputError
from ps019.gate.breakglass import VerifiedIdentity
from ps019.oidc import ci_identity


def resolve_operator_identity(environ: Mapping[str, str] | None = None, identity_settings: Any = None,
                              gate_settings: Any = None) -> VerifiedIdentity:
    """Who is running a break-glass command, as verified -- not as claimed. The same identity the pack uses as the
    deployer (``ps019.gate.edges.deployer_from``), so a grant opened here matches the ``pulumi up`` that follows:

    1. a CI OIDC ID token that verifies against ``gate.oidc`` (in a CI job): its actor, ``ci-oidc``;
    2. AWS credentials: ``sts:GetCallerIdentity`` through ``ps019.aws.identity`` (only the pack config's
       ``identity.endpoints``; environment endpoint overrides are ignored) -> the caller ARN, ``aws-sts``;
    3. otherwise nothing verifies who you are and the command refuses. CI environment variables (``GITHUB_ACTOR``)
       and the local user name are assertions anyone can make.
    """
    env = os.environ if environ is None else environ
    oidc = getattr(gate_settings, "oidc", None)
    token_problem = None
    if oidc is not None and oidc.issuers:
        found = ci_identity(oidc, env, datetime.now(timezone.utc))
        if found is not None and found.verified and found.actor:
            return VerifiedIdentity(found.actor, "ci-oidc", f"CI OIDC ID token of {found.issuer} (sub {found.subject})")
        token_problem = found.problem if found is not None else None
    settings = identity_settings or IdentitySettings()
    settings = settings.model_copy(update={"fetch_role_policies": False, "lookup": "on"})
    sts = lookup_deploy_identity(settings, use_cache=False)
    if sts.error is None and sts.arn:
        return VerifiedIdentity(sts.arn, "aws-sts", "sts:GetCallerIdentity", sts.account)
    if sts.error and not sts.error.startswith("no AWS credentials"):
        raise InputError(f"AWS credentials are present but sts:GetCallerIdentity failed: {sts.error}")
    raise InputError("cannot verify who you are: no CI OIDC ID token that verifies"
                     + (f" ({token_problem})" if token_problem else "")
                     + " and no AWS credentials (sts:GetCallerIdentity); break-glass needs a verified identity")
