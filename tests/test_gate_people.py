"""One person, one approver: N-of-M counts people and separation of duties compares people, through one normalisation
(``ps019.gate.people``). Each separation-of-duties setting has a scenario that it blocks when on and allows when off,
so disabling a check turns a test red.

Attacks: one person with two trusted keys (an e-mail identity and an SSO-session ARN) meeting a two-approver rule
alone; an operator reviewing her own emergency change under her second identity; an author naming a colleague as
author and approving her own change."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest

from ps019.gate import change_request as crm
from ps019.gate import signing
from ps019.gate.ci_identity import CiIdentity
from ps019.gate.decision import APPROVALS, SEPARATION, Deployer, GateInputs, decide_gate
from ps019.gate.settings import GateSettings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
STACK = "acme/web/prod"
COMMIT = "a" * 40
SSO_ALICE = "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Approver_0a1b2c/alice@example.com"
KEYS = {n: signing.generate_private_key() for n in ("alice", "alice_sso", "bob", "carol", "dave")}
IDENTITY = {"alice": "alice@example.com", "alice_sso": SSO_ALICE, "bob": "bob@example.com",
            "carol": "carol@example.com", "dave": "dave@example.com"}
TOKEN = CiIdentity(verified=True, issuer_name="github", provider="github", repository="acme/web",
                   ref="refs/heads/main", ref_protected=True, sha=COMMIT, actor="deploy-bot", jti="j", run_id="1")


def settings(**over) -> GateSettings:
    base = {
        "trusted_keys": [{"public_key": signing.public_key_text(k), "identity": IDENTITY[n], "roles": ["approver"]}
                         for n, k in KEYS.items()],
        "oidc": {"issuers": [{"name": "github", "issuer": "https://token.actions.githubusercontent.com",
                              "provider": "github", "audiences": ["ps019"], "jwks": {"keys": []}}],
                 "rules": {"production": [{"issuer": "github", "repository": ["acme/web"]}]}},
    }
    return GateSettings.model_validate({**base, **over})


def request_doc(author="carol@example.com") -> dict:
    return {"ticket": "CHG-1", "change_class": "normal", "summary": "s", "owner": "web", "author": author,
            "artifact": {"git_commit": COMMIT}, "stacks": [STACK], "test_evidence": "https://ci/1",
            "rollback_plan": "https://rb", "monitoring_plan": "https://mon", "created_at": "2026-11-20T09:00:00Z",
            "expires_at": "2026-11-21T09:00:00Z"}


def signed(doc: dict, *signers: tuple[str, str]) -> bytes:
    request = crm.ChangeRequest.model_validate({**doc, "approvals": []})
    approvals = [crm.sign_approval(request, KEYS[name], approver=IDENTITY[name], role=role,
                                   signed_at=NOW - timedelta(hours=1)).model_dump(mode="json")
                 for name, role in signers]
    return json.dumps({**doc, "approvals": approvals}).encode()


def decide(data: bytes, gate: GateSettings, deployer: Deployer = Deployer("deploy-bot", "oidc")):
    return decide_gate(GateInputs(
        stack_ref=STACK, tier="production", tier_source="pattern", now=NOW, ci=TOKEN.ci_run(), ci_identity=TOKEN,
        change_request=crm.ChangeRequestSource("env PS019_CHANGE_REQUEST", "/cr.json", data=data), deployer=deployer,
        artifact_commit=COMMIT, artifact_source="token"), gate)


def messages(decision, control_id) -> str:
    return " | ".join(v.message for v in decision.violations[control_id])


def test_the_honest_two_person_approval_passes():
    assert decide(signed(request_doc(), ("carol", "author"), ("alice", "approver"), ("bob", "approver")),
                  settings()).allowed


def test_one_person_with_an_email_key_and_an_sso_arn_key_counts_once():
    decision = decide(signed(request_doc(), ("alice", "approver"), ("alice_sso", "approver")), settings())
    assert decision.blocked
    assert "1 verified" in messages(decision, APPROVALS) or "duplicate approval" in str(decision.rejected_approvals)


def test_the_people_directory_ties_a_persons_logins_and_keys_together():
    directory = {"alice": ["alice@example.com", "arn:aws:sts::111111111111:assumed-role/*/alice@example.com"],
                 "bob": ["bob@example.com"], "carol": ["carol@example.com"], "dave": ["dave@example.com"],
                 "merge-queue": ["deploy-bot"]}  # whoever deploys is in it too (test_redteam_insider.py)
    gate = settings(people=directory)
    assert decide(signed(request_doc(), ("carol", "author"), ("alice", "approver"), ("bob", "approver")),
                  gate).allowed
    assert decide(signed(request_doc(), ("carol", "author"), ("alice", "approver"), ("alice_sso", "approver")),
                  gate).blocked
    # a deployer known by another name is still that person: the approver-not-deployer rule sees through it
    directory["bob"].append("bob-gh")
    as_bob = decide(signed(request_doc(), ("alice", "approver"), ("bob", "approver")), settings(people=directory),
                    Deployer("bob-gh", "oidc"))
    assert as_bob.blocked and "the approver is the deployer" in messages(as_bob, SEPARATION)


def test_with_a_directory_a_key_of_an_unlisted_identity_does_not_count():
    gate = settings(people={"alice": ["alice@example.com"], "carol": ["carol@example.com"]})
    decision = decide(signed(request_doc(), ("alice", "approver"), ("bob", "approver")), gate)
    assert decision.blocked and "not a person in gate.people" in str(decision.rejected_approvals)


# --- every separation-of-duties setting blocks when on and allows when off ----------------------------------------------


SOD_CASES = {
    # setting: (request author, signers, deployer)
    "approver_not_author": ("alice@example.com", [("alice", "approver"), ("bob", "approver"), ("dave", "approver")],
                            Deployer("deploy-bot", "oidc")),
    "approver_not_deployer": ("carol@example.com", [("alice", "approver"), ("bob", "approver")],
                              Deployer("alice@example.com", "oidc")),
    "author_not_deployer": ("carol@example.com", [("alice", "approver"), ("bob", "approver")],
                            Deployer("carol@example.com", "oidc")),
    "author_signs": ("carol@example.com", [("alice", "approver"), ("bob", "approver")],
                     Deployer("deploy-bot", "oidc")),
}


@pytest.mark.parametrize("setting", sorted(SOD_CASES))
def test_each_separation_of_duties_setting_blocks_when_on_and_not_when_off(setting):
    author, signers, deployer = SOD_CASES[setting]
    data = signed(request_doc(author), *signers)
    others = {name: False for name in SOD_CASES}
    on = decide(data, settings(separation_of_duties={**others, setting: True}), deployer)
    off = decide(data, settings(separation_of_duties={**others, setting: False}), deployer)
    assert on.blocked and on.violations[SEPARATION], setting
    assert off.allowed, (setting, off.violations)
    if setting == "approver_not_author":  # the author's approval is dropped: the other two still meet 2-of-M
        assert "the approver is the change author" in messages(on, SEPARATION)


def test_an_author_cannot_name_a_colleague_as_author_and_approve_her_own_change():
    """alice writes the change, puts bob down as author, approves it herself with dave."""
    gate = settings(separation_of_duties={"author_signs": True})
    framed = decide(signed(request_doc("bob@example.com"), ("alice", "approver"), ("dave", "approver")), gate)
    assert framed.blocked and "did not sign" in messages(framed, SEPARATION)
    # alice signing as the author of bob's request does not help her either
    posing = decide(signed(request_doc("bob@example.com"), ("alice", "author"), ("alice", "approver"),
                           ("dave", "approver")), gate)
    assert posing.blocked and "is not the author" in str(posing.verified_approvals)
    # the real author signs: the approval by alice and dave counts, and the author's signature is not an approval
    honest = decide(signed(request_doc("bob@example.com"), ("bob", "author"), ("alice", "approver"),
                           ("dave", "approver")), gate)
    assert honest.allowed, honest.violations
    only_author = decide(signed(request_doc("bob@example.com"), ("bob", "author"), ("alice", "approver")), gate)
    assert only_author.blocked and "1 verified" in messages(only_author, APPROVALS)


def test_an_operator_cannot_review_her_own_grant_under_her_second_identity():
    from ps019.gate.breakglass import (BreakGlassGrant, BreakGlassReview, VerifiedIdentity, grant_record,
                                       grant_statuses, review_record, sign_document)

    op_key, review_key = signing.generate_private_key(), signing.generate_private_key()
    operator = "arn:aws:sts::111111111111:assumed-role/BreakGlass/olivia@example.com"
    trusted = {"trusted_keys": [
        {"publicKey": signing.public_key_text(op_key), "identity": operator, "roles": ["operator"]},
        {"publicKey": signing.public_key_text(review_key), "identity": "olivia@example.com", "roles": ["reviewer"]}]}
    grant = sign_document(BreakGlassGrant(
        grant_id="BG-20261120-0123456789ab", stack=STACK, operator=operator, identity_source="aws-sts", reason="r",
        incident="INC-1", issued_at=NOW - timedelta(hours=3), expires_at=NOW - timedelta(hours=2), key_id=""), op_key)
    review = sign_document(BreakGlassReview(grant_id=grant.grant_id, stack=STACK, reviewer="olivia@example.com",
                                            reviewed_at=NOW - timedelta(hours=1), notes="all fine", key_id=""),
                           review_key)
    records = [grant_record(grant, VerifiedIdentity(operator, "aws-sts", "sts")).model_dump(),
               review_record(review).model_dump()]
    [status] = grant_statuses(records, NOW, trusted)
    assert status.review is None
    assert any("must be by a different person" in n for n in status.notices)


def test_names_are_normalised_the_same_way_everywhere():
    from ps019.gate.people import People

    people = People({"alice": ["alice@example.com", "alice-gh"]}, {"bob@example.com": ["bobby"]})
    for a, b in (("ALICE@example.com ", "alice-gh"), (SSO_ALICE, "Alice-GH"), ("bobby", "BOB@example.com"),
                 ("arn:aws:iam::1:user/bobby", "bob@example.com")):
        assert people.same(a, b), (a, b)
    assert not people.same("alice@example.com", "bob@example.com")
    assert not people.same("аlice@example.com", "alice@example.com")  # Cyrillic а: another name
    assert dataclasses.is_dataclass(TOKEN)
