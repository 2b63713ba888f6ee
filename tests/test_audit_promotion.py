"""PS019-EVID-002 (promotion): the pure rule over its fixtures, the store loader, and the control's check."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import ps019.controls.evidence.promotion as promotion
from tests.plugins.evidence import make_record

FIXTURES = Path(promotion.__file__).parent / "fixtures" / "promotion"
CASES = sorted(FIXTURES.glob("*/*.json"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture(path):
    case = json.loads(path.read_text())
    found = promotion.promotion_violations(case["artifact"], case["tier"], case["prior_updates"], case.get("params"))
    if path.parent.name == "allow":
        assert found == []
    else:
        assert len(found) == 1
        for text in case["message_contains"]:
            assert text in found[0].message


def test_there_are_allow_and_deny_fixtures():
    assert {p.parent.name for p in CASES} == {"allow", "deny"}


def test_registered_advisory_stack_control():
    from ps019.controls.registry import get
    from ps019.model import Level

    control = get("PS019-EVID-002")
    assert control.scope == "stack" and control.level is Level.ADVISORY and "promotion" in control.clause


@pytest.fixture
def store(tmp_path):
    from ps019.evidence import Signer, open_store

    with open_store(f"sqlite:///{tmp_path / 'ev.db'}") as s:
        yield s, Signer.generate()


def _artifact(commit, digest):
    from ps019.evidence import Artifact

    return Artifact(git_commit=commit, source_digest=digest)


def test_loader_finds_lower_tier_updates_of_the_same_project_and_artifact(store):
    from ps019.evidence.audit import load_promotion_facts
    from ps019.evidence.record import PolicyResult

    s, signer = store
    now = datetime.now(timezone.utc)
    good = make_record(stack="staging", environment="staging", started_at=now - timedelta(hours=3),
                       artifact=_artifact("c1", "d1"))
    failed = make_record(stack="dev", environment="development", started_at=now - timedelta(hours=2),
                         artifact=_artifact("c1", "d1"), outcome="failed",
                         policy_results=[PolicyResult(control_id="PS019-X-001", level="mandatory", message="no")])
    other_project = make_record(project="billing", stack="staging", environment="staging",
                                started_at=now - timedelta(hours=1), artifact=_artifact("c1", "d1"))
    other_artifact = make_record(stack="staging", environment="staging", started_at=now - timedelta(hours=1),
                                 artifact=_artifact("c2", "d2"))
    too_old = make_record(stack="staging", environment="staging", started_at=now - timedelta(days=200),
                          artifact=_artifact("c1", "d1"))
    preview = make_record(kind="preview", stack="staging", environment="staging", artifact=_artifact("c1", "d1"),
                          started_at=now - timedelta(hours=1))
    for r in (good, failed, other_project, other_artifact, too_old, preview):
        s.append(r, signer)
    facts = load_promotion_facts(s, "acme", "payments", _artifact("c1", "d1"), now=now)
    assert {p.record_id for p in facts.prior_updates} == {good.record_id, failed.record_id}
    assert promotion.promotion_violations(facts, "production", facts.prior_updates) == []
    # The integrator's call passes only the commit: that works too.
    facts = load_promotion_facts(s, "acme", "payments", "c1", now=now)
    assert facts.git_commit == "c1" and len(facts.prior_updates) == 2
    assert promotion.promotion_violations(facts, "production", facts.prior_updates) == []
    # An artifact nobody deployed below production.
    facts = load_promotion_facts(s, "acme", "payments", _artifact("c9", "d9"), now=now)
    assert facts.prior_updates == ()
    assert len(promotion.promotion_violations(facts, "production", facts.prior_updates)) == 1


def _ctx(tier, history, dry_run=False):
    from ps019.controls.base import RunContext

    return RunContext(organization="acme", project="payments", stack="prod", dry_run=dry_run, tier=tier,
                      history=history)


def test_check_reads_facts_from_the_run_context():
    from types import SimpleNamespace

    from ps019.evidence.audit import PriorUpdate, PromotionFacts

    prior = PriorUpdate("r1", "acme/payments/staging", "staging", "succeeded", "c1", "d1", 0)
    params = promotion.CONTROL.params(None)
    ok = SimpleNamespace(promotion=PromotionFacts("c1", "d1", (prior,)), error=None)
    assert promotion.check((), _ctx("production", ok), params) == []
    missing = SimpleNamespace(promotion=PromotionFacts("c1", "d1", ()), error=None)
    assert len(promotion.check((), _ctx("production", missing), params)) == 1
    assert promotion.check((), _ctx("staging", missing), params) == []
    assert promotion.check((), _ctx("production", missing, dry_run=True), {**params, "check_previews": False}) == []
    down = SimpleNamespace(promotion=None, error="evidence store unreachable (StoreError: x)")
    found = promotion.check((), _ctx("production", down), params)
    assert len(found) == 1 and "cannot verify environment promotion" in found[0].message
    errored = SimpleNamespace(promotion={"error": "StoreError: boom"}, error=None)
    assert "boom" in promotion.check((), _ctx("production", errored), params)[0].message
    assert "not consulted" in promotion.check((), _ctx("production", None), params)[0].message
