"""PS019-EVID-002: a production update deploys an artifact that already reached a lower tier successfully.

PS-019 §4 asks for "immutable deployment records showing artifact digest and environment promotion". This control
reads the evidence (through the facts the pack's edge gathered once: ``ctx.history.promotion``, built by
``ps019.evidence.audit.load_promotion_facts``) and asks: is there an ``update`` record of a *lower* tier stack in the
same project, for the same artifact, that succeeded without an unwaived mandatory violation?

Advisory by default (many teams adopt promotion gradually); set the level to mandatory in the policy config.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ps019.controls.base import Control, RunContext
from ps019.model import Level, ResourceView, Severity, Violation

TIER_RANK = {"development": 1, "staging": 2, "production": 3}



def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _short(value: str | None) -> str:
    return value[:12] if value else "none"


def promotion_violations(artifact: Any, tier: str, prior_updates: Iterable[Any],
                         params: Mapping[str, Any] | None = None) -> list[Violation]:
    """Pure. ``artifact`` has ``git_commit``/``source_digest`` (attributes or keys); ``prior_updates`` are
    ``ps019.evidence.audit.PriorUpdate`` (or mappings with the same fields: tier, outcome, git_commit,
    source_digest, mandatory_violations, stack, record_id). ``params``: the control's config (validated, defaults
    filled in); None = the defaults."""
    p = CONTROL.params(params)
    if tier not in p["gated_tiers"]:
        return []
    rank = TIER_RANK.get(tier)
    commit, digest = _field(artifact, "git_commit"), _field(artifact, "source_digest")
    match_on = p["match_on"]
    if match_on == "either":
        match_on = "source_digest" if digest else "git_commit"
    wanted = digest if match_on == "source_digest" else commit
    if not wanted:
        return [Violation(
            f"cannot show environment promotion: this {tier} update records no artifact {match_on.replace('_', ' ')} "
            "(set PS019_GIT_COMMIT to the deployed commit, or run from the program directory / set PS019_PROGRAM_DIR "
            "so the pack can digest the program's source tree)",
            details={"match_on": match_on})]
    lower = []
    for prior in prior_updates:
        prior_tier = _field(prior, "tier")
        prior_rank = TIER_RANK.get(prior_tier)
        if prior_rank is None or rank is None or prior_rank >= rank:
            continue
        if p["required_tier"] and prior_tier != p["required_tier"]:
            continue
        if _field(prior, match_on) != wanted:
            continue
        lower.append(prior)
    ok = [x for x in lower if _field(x, "outcome") in (None, "succeeded") and not _field(x, "mandatory_violations")]
    if ok:
        return []
    where = f"the {p['required_tier']} tier" if p["required_tier"] else "a lower tier"
    label = f"{match_on.replace('_', ' ')} {_short(wanted)}"
    if lower:
        failed = ", ".join(sorted({f"{_field(x, 'stack')} ({_field(x, 'outcome') or 'n/a'}, "
                                   f"{_field(x, 'mandatory_violations')} mandatory violations)" for x in lower}))
        msg = (f"artifact {label} reached {where} only in failed or non-compliant updates ({failed}); "
               f"deploy it successfully to {where} before {tier}")
    else:
        msg = (f"artifact {label} has no successful update in {where} of this project; PS-019 requires "
               f"promotion through a lower tier before {tier}")
    return [Violation(msg, details={"match_on": match_on, "artifact": wanted,
                                    "prior_records": [_field(x, "record_id") for x in lower]})]


def check(resources: Sequence[ResourceView], ctx: RunContext, params: Mapping[str, Any]) -> list[Violation]:
    if ctx.dry_run and not params["check_previews"]:
        return []
    if ctx.tier not in params["gated_tiers"]:
        return []
    history = ctx.history
    facts = getattr(history, "promotion", None)
    store_error = getattr(history, "error", None)
    error = facts.get("error") if isinstance(facts, Mapping) else getattr(facts, "error", None)
    if facts is None or error:
        reason = error or store_error or "the evidence store was not consulted"
        return [Violation(f"cannot verify environment promotion: {reason}")]
    return promotion_violations(facts, ctx.tier, getattr(facts, "prior_updates", ()), params)


CONTROL = Control(
    deployment_only=True,  # checks the deployment itself: not applicable under `pulumi policy analyze`
    id="PS019-EVID-002",
    title="Production updates deploy an artifact already promoted through a lower tier",
    clause="PS-019 §4 Immutable deployment records showing artifact digest and environment promotion",
    severity=Severity.MEDIUM,
    level=Level.ADVISORY,
    rationale="An artifact that never ran successfully in a lower environment reaches production untested; the "
              "evidence store already knows where each artifact digest was deployed, so promotion can be proven "
              "rather than asserted.",
    remediation="Deploy the same commit (same program source digest) to a staging or development stack of this "
                "project first, without mandatory violations; or record an exception for this control.",
    check=check,
    scope="stack",
    config_model="ps019.controls.evidence.config:PromotionConfig",
)
