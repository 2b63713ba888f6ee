"""The author is not self-declared (issue 11): under the default settings a production change request counts only when
its author signed it with their own trusted key (``ps019 approve FILE --role author``).

Attack: an approver writes a change, names a colleague as its author and approves it herself. With a self-declared
author the approver-not-author rule compares against text she wrote, so her approval counts. By default now the named
author must sign; a signature by anyone else as the author is refused; development and staging are not asked; relaxing
it (``separationOfDuties.authorSigns: false``) is an explicit setting that every production record names."""

from __future__ import annotations

import pytest

from ps019.gate.decision import SEPARATION
from tests.test_gate_oidc import change_request, gather, run_for, settings, token, violations
from tests.test_gate_people import decide, request_doc, signed
from tests.test_gate_people import settings as people_settings


@pytest.fixture(scope="module")
def issuer():
    from ps019.oidc.local_issuer import LocalIssuer

    return LocalIssuer("https://token.actions.example.test")


def sod_text(decision) -> str:
    return " | ".join(v.message for v in decision.violations[SEPARATION])


def test_under_the_default_settings_an_approver_cannot_name_a_colleague_as_author_and_approve_it():
    """alice writes the change, names bob as author and approves it with dave: nothing in the gate's settings was
    turned on for this."""
    framed = decide(signed(request_doc("bob@example.com"), ("alice", "approver"), ("dave", "approver")),
                    people_settings())
    assert framed.blocked
    text = sod_text(framed)
    assert "the author bob@example.com did not sign change request CHG-1" in text
    assert "`ps019 approve FILE --role author --identity bob@example.com --key" in text  # how to fix it


def test_the_author_signing_lets_the_change_through_and_is_recorded():
    decision = decide(signed(request_doc(), ("carol", "author"), ("alice", "approver"), ("bob", "approver")),
                      people_settings())
    assert decision.allowed, decision.violations
    evidence = decision.evidence()
    assert evidence["presented"]["change_request"]["author_verified"]["identity"] == "carol@example.com"
    assert evidence["relaxed"] == []
    # the author's signature is not an approval: with one approver it is still one short
    short = decide(signed(request_doc(), ("carol", "author"), ("alice", "approver")), people_settings())
    assert short.blocked and "1 verified" in " ".join(v.message for v in short.violations["PS019-GATE-002"])


def test_a_signature_as_the_author_by_someone_else_is_refused():
    posing = decide(signed(request_doc(), ("alice", "author"), ("alice", "approver"), ("bob", "approver")),
                    people_settings())
    assert posing.blocked
    text = sod_text(posing)
    assert "signed as the author, but alice@example.com is not the author carol@example.com" in text
    assert "the author carol@example.com did not sign" in text


@pytest.mark.parametrize("tier", ["development", "staging"])
def test_development_and_staging_are_not_asked_for_the_authors_signature(tier):
    from ps019.gate import change_request as crm
    from ps019.gate.decision import Deployer, GateInputs, decide_gate
    from tests.test_gate_people import COMMIT, NOW, TOKEN

    doc = {**request_doc(), "stacks": [f"acme/web/{tier}"]}
    decision = decide_gate(GateInputs(
        stack_ref=f"acme/web/{tier}", tier=tier, tier_source="pattern", now=NOW, ci=TOKEN.ci_run(), ci_identity=TOKEN,
        change_request=crm.ChangeRequestSource("env", "/cr.json", data=signed(doc, ("alice", "approver"))),
        deployer=Deployer("deploy-bot", "oidc"), artifact_commit=COMMIT, artifact_source="token"), people_settings())
    assert not decision.violations[SEPARATION] and decision.relaxed == ()


def test_unknown_stacks_enforced_as_production_are_asked_too():
    from ps019.gate import change_request as crm
    from ps019.gate.decision import Deployer, GateInputs, decide_gate
    from tests.test_gate_people import COMMIT, NOW, TOKEN

    doc = {**request_doc(), "stacks": ["acme/web/blue"]}
    decision = decide_gate(GateInputs(
        stack_ref="acme/web/blue", tier="unknown", tier_source="no pattern", now=NOW, ci=TOKEN.ci_run(),
        ci_identity=TOKEN, deployer=Deployer("deploy-bot", "oidc"), artifact_commit=COMMIT, artifact_source="token",
        change_request=crm.ChangeRequestSource("env", "/cr.json",
                                               data=signed(doc, ("alice", "approver"), ("bob", "approver")))),
        people_settings())
    assert decision.blocked and "did not sign" in sod_text(decision)


def test_through_the_pack_an_unsigned_author_blocks_and_a_signed_one_passes(issuer, tmp_path):
    raw = settings(issuer, tmp_path)
    unsigned = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer),
                                      "PS019_CHANGE_REQUEST": change_request(tmp_path, author_signer=None)})
    assert unsigned.decision.blocked and "did not sign" in " ".join(violations(unsigned)["PS019-GATE-003"])
    posing = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer),
                                    "PS019_CHANGE_REQUEST": change_request(tmp_path, author_signer="alice")})
    assert posing.decision.blocked and "is not the author carol@example.com" in " ".join(
        violations(posing)["PS019-GATE-003"])
    honest = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer),
                                    "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert honest.decision.allowed, violations(honest)


def test_relaxing_it_is_an_explicit_setting_that_every_production_record_names(issuer, tmp_path):
    from ps019.pack import facts

    raw = settings(issuer, tmp_path, separationOfDuties={"authorSigns": False})
    run = run_for(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer),
                                  "PS019_CHANGE_REQUEST": change_request(tmp_path, author_signer=None)})
    found = facts.gather(run)
    assert found.decision.allowed, violations(found)
    expected = ("gate.separationOfDuties.authorSigns=false: the author carol@example.com of CHG-42 is self-declared "
                "(not verified by their signature)")
    assert found.decision.evidence()["relaxed"] == [expected]
    record = facts.build_record(run, found, "preview")
    assert expected in record.recording.relaxed
    # the default, with the author's signature, records no relaxation
    signed_run = run_for(tmp_path, settings(issuer, tmp_path), {"PS019_ID_TOKEN": token(issuer),
                                                                "PS019_CHANGE_REQUEST": change_request(tmp_path)})
    assert facts.build_record(signed_run, facts.gather(signed_run), "preview").recording.relaxed == []
