"""Attack: a non-security approver excepts a high-severity IAM finding for up to 90 days, after which PS019-GATE-005 no
longer asks for a security approval. An exception downgrading a finding at or above the escalation threshold now
needs a security-role signature; otherwise it is ignored, and the run says why (PS019-GATE-052)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ps019.gate import signing
from ps019.gate.breakglass import sign_document
from ps019.gate.exceptions import ControlException, exception_record
from ps019.gate.settings import GateSettings
from ps019.model import Diagnostic, Level, Severity

STACK = "acme/web/prod"
ROLE_URN = "urn:pulumi:prod::web::aws:iam/role:Role::admin"
KEYS = {n: signing.generate_private_key() for n in ("amy", "sec")}
TRUSTED = [{"publicKey": signing.public_key_text(KEYS["amy"]), "identity": "amy@example.com", "roles": ["approver"]},
           {"publicKey": signing.public_key_text(KEYS["sec"]), "identity": "sec@example.com",
            "roles": ["approver", "security"]}]


def excepted(signer: str, control_id="PS019-IAM-001") -> ControlException:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return sign_document(ControlException(
        exception_id="EX-20261203-0123456789ab", control_id=control_id, resource=ROLE_URN, stack=STACK,
        reason="legacy role until SEC-12", approved_by=f"{signer}@example.com", approved_at=now - timedelta(hours=1),
        expires_at=now + timedelta(days=80), key_id=""), KEYS[signer])


def gather(tmp_path, exc: ControlException):
    from ps019.evidence import load_signer, open_store
    from ps019.pack import facts
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings

    url = f"sqlite:///{tmp_path / 'evidence.db'}"
    with open_store(url) as store:
        store.append(exception_record(exc, "production"), load_signer())
    raw = {"gate": {"trustedKeys": TRUSTED}, "identity": {"lookup": "off"}, "evidence": {"store_url": url}}
    env = {"PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "true",
           "XDG_DATA_HOME": str(tmp_path / "xdg")}
    from ps019.controls.registry import all_controls

    levels = {c.id: c.level for c in all_controls()}  # the pack's controls, as the adapter configures them
    return facts.gather(Run("ps019", "0.0.0", Settings(raw=raw), {}, levels, environ=env))


def finding() -> Diagnostic:
    return Diagnostic(control_id="PS019-IAM-001", level=Level.MANDATORY, severity=Severity.HIGH, urn=ROLE_URN,
                      message="Action * on Resource *")


def test_a_non_security_approvers_exception_of_a_high_finding_is_ignored_and_escalation_still_asks(tmp_path):
    from ps019.gate.decision import escalation_violations
    from ps019.pack import facts as facts_mod

    f = gather(tmp_path, excepted("amy"))
    assert not f.history.exceptions.valid
    reasons = [r for _, r in f.history.exceptions.ignored]
    assert any("at or above the escalation threshold high" in r and "role security" in r for r in reasons), reasons
    [kept] = facts_mod.post_process(f, [finding()])
    assert kept.level is Level.MANDATORY and not kept.waived_by
    assert escalation_violations(f.decision, [kept.severity])  # GATE-005 still wants a security approver


def test_a_security_approvers_exception_is_honoured(tmp_path):
    from ps019.pack import facts as facts_mod

    f = gather(tmp_path, excepted("sec"))
    assert [e.exception_id for e in f.history.exceptions.valid] == ["EX-20261203-0123456789ab"]
    [waived] = facts_mod.post_process(f, [finding()])
    assert waived.level is Level.ADVISORY and waived.waived_by


def test_below_the_threshold_an_approver_may_except(tmp_path):
    from ps019.gate.exceptions import active_exceptions

    exc = excepted("amy")
    valid, ignored = active_exceptions([exception_record(exc, "production")], STACK, datetime.now(timezone.utc),
                                       GateSettings.model_validate({"trustedKeys": TRUSTED}),
                                       control_severities={"PS019-IAM-001": Severity.MEDIUM}, tier="production")
    assert valid and not ignored
    valid, ignored = active_exceptions([exception_record(exc, "production")], STACK, datetime.now(timezone.utc),
                                       GateSettings.model_validate({"trustedKeys": TRUSTED}),
                                       control_severities={"PS019-IAM-001": Severity.HIGH}, tier="staging")
    assert valid and not ignored  # escalation applies to gate.escalation.tiers (production) only
