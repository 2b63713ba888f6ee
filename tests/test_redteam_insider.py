"""A malicious insider against the gate of issues 9-11 (docs/security-review.md, "Red team: the insider after
issue 11"). The insider has write access to the repository (the Pulumi program, ``Pulumi.<stack>.yaml``, the change
request file, non-protected CI jobs and the environment of their own runs) and possibly ONE trusted key; not the
platform team's ps019-settings, nobody else's private key, not the CI provider's signing key.

Each test is an attack written before its fix; it failed on the code before the fix (the finding says how) and
passes now. Tests of defences that held are kept only where they pin something no other test did."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from ps019.gate import change_request as crm
from ps019.gate import signing
from tests.test_gate_cli import workspace  # noqa: F401 - fixture (keys, a valid request, CLI env)
from tests.test_threat_model import deploy_role, hardened  # noqa: F401 - fixtures (moto STS, the documented config)

# --- single use: a request that deploys a stack once -------------------------------------------------------------------


def _request_file(tmp_path, *, created_at, expires_at, name="cr.json") -> str:
    from tests.test_gate_oidc import COMMIT, KEYS, STACK

    now = datetime.now(timezone.utc).replace(microsecond=0)
    request = crm.ChangeRequest(
        ticket="CHG-77", change_class="normal", summary="s", owner="team", author="carol@example.com",
        artifact={"git_commit": COMMIT}, stacks=[STACK], test_evidence="https://ci/1", rollback_plan="https://rb",
        monitoring_plan="https://mon", created_at=created_at, expires_at=expires_at)
    request.approvals.append(crm.sign_approval(request, KEYS["carol"], approver="carol@example.com", role="author",
                                               signed_at=now - timedelta(minutes=40)))  # production: the author signs
    for who in ("alice", "bob"):
        request.approvals.append(crm.sign_approval(request, KEYS[who], approver=f"{who}@example.com",
                                                   role="approver", signed_at=now - timedelta(minutes=30)))
    path = tmp_path / name
    path.write_text(json.dumps(request.model_dump(mode="json")))
    return str(path)


def _update(tmp_path, raw, environ, outcome=None):
    """One update pass whose record the pack writes (``outcome``: what the record says happened)."""
    from ps019.pack import facts as facts_mod
    from tests.test_gate_oidc import run_for

    run = run_for(tmp_path, raw, environ, dry_run=False)
    f = facts_mod.gather(run)
    run._facts = f
    result = facts_mod.emit_record(run, f, kind="update", outcome=outcome)
    assert result.record_id, result
    return f


@pytest.fixture
def issuer():
    from ps019.oidc.local_issuer import LocalIssuer

    return LocalIssuer("https://token.actions.example.test")


def test_a_change_request_created_in_the_future_is_refused_not_valid_for_months(issuer, tmp_path):
    """ATTACK: the author writes ``created_at`` 30 days ahead and ``expires_at`` a day after it. The lifetime check
    measured expires_at - created_at (one day, within the 14-day maximum), so the approved request was valid for 31
    days; and single use looked for earlier updates only since created_at, so it found none and the request deployed
    as often as its approvals were fresh. Now a request created in the future (beyond the clock skew) is refused."""
    from tests.test_gate_oidc import gather, settings, token, violations

    now = datetime.now(timezone.utc).replace(microsecond=0)
    cr = _request_file(tmp_path, created_at=now + timedelta(days=30), expires_at=now + timedelta(days=31))
    raw = settings(issuer, tmp_path, rules={"production": {"normal": {"singleUse": True}}})
    f = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer), "PS019_CHANGE_REQUEST": cr}, dry_run=False)
    assert f.decision.blocked
    assert "created_at" in " ".join(violations(f)["PS019-GATE-001"]) and "in the future" in " ".join(
        violations(f)["PS019-GATE-001"])


def test_single_use_does_not_trust_the_requests_own_created_at(issuer, tmp_path):
    """ATTACK: ``created_at`` four minutes ahead (inside the five-minute clock skew, so accepted) and two deployments
    in those four minutes: the single-use lookup started at created_at and missed both. It now starts where the
    request could first have been used (its expiry minus the maximum lifetime, minus the skew)."""
    from tests.test_gate_oidc import gather, settings, token, violations

    now = datetime.now(timezone.utc).replace(microsecond=0)
    cr = _request_file(tmp_path, created_at=now + timedelta(minutes=4), expires_at=now + timedelta(hours=20))
    raw = settings(issuer, tmp_path, rules={"production": {"normal": {"singleUse": True}}})
    first = _update(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="1"), "PS019_CHANGE_REQUEST": cr})
    assert first.decision.allowed, violations(first)
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="2"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked and "single-use" in " ".join(violations(again)["PS019-GATE-001"])


@pytest.mark.parametrize("outcome", ["failed", "interrupted"])
def test_an_update_that_failed_or_was_interrupted_has_used_its_single_use_request(issuer, tmp_path, outcome):
    """ATTACK: single use counted only updates whose record says ``succeeded``. An update changes resources before
    the engine calls AnalyzeStack, so the insider makes it end ``failed`` (a stack-level mandatory finding their
    program triggers) or ``interrupted`` (cancelling the workflow run, which write access allows, after the resources
    were applied) and deploys the same approved request again from a new run."""
    from tests.test_gate_oidc import change_request, gather, settings, token, violations

    raw = settings(issuer, tmp_path, rules={"production": {"normal": {"singleUse": True}}})
    cr = change_request(tmp_path)
    first = _update(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="1"), "PS019_CHANGE_REQUEST": cr},
                    outcome=outcome)
    assert first.decision.allowed, violations(first)
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="2"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked and "single-use" in " ".join(violations(again)["PS019-GATE-001"])


@pytest.mark.parametrize("outcome", ["failed", "interrupted"])
def test_a_ci_run_whose_first_update_failed_or_was_interrupted_does_not_deploy_again(issuer, tmp_path, outcome):
    """ATTACK: the same, against replay protection's "a run deploys a stack once": it too counted only succeeded
    updates, so one CI run (one token request endpoint, fresh jti each time) could run ``pulumi up`` twice."""
    from tests.test_gate_oidc import change_request, gather, settings, token, violations

    raw = settings(issuer, tmp_path)
    cr = change_request(tmp_path)
    first = _update(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="9"), "PS019_CHANGE_REQUEST": cr},
                    outcome=outcome)
    assert first.decision.allowed, violations(first)
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="9"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked and "already deployed" in " ".join(violations(again)["PS019-GATE-004"])


# --- one person, one approver: who is the deployer? ----------------------------------------------------------------------


def _hardened_gather(tmp_path, hardened, actor):
    from tests import test_threat_model as tm

    issuer, raw = hardened
    return tm.gather(tmp_path, raw, {"PS019_ID_TOKEN": tm.job_token(issuer, actor=actor),
                                     "PS019_CHANGE_REQUEST": tm.change_request(tmp_path)})


@pytest.mark.moto
def test_in_the_hardened_configuration_an_approver_cannot_deploy_her_own_change_under_her_ci_login(
        tmp_path, hardened, deploy_role):
    """ATTACK: approvers' keys name their e-mail; the deploy job's OIDC token names whoever merged (their GitHub
    login). docs/threat-model.md's hardened configuration had no people directory, so ``alice-gh`` was never the same
    person as ``alice@example.com``: Alice approved, merged, and counted as one of the two approvers of the deployment
    she triggered; the author Carol did the same with ``authorNotDeployer`` on. The hardened configuration now maps
    each person's CI login in ``gate.people``."""
    alice = _hardened_gather(tmp_path, hardened, "alice-gh")
    assert alice.decision.blocked
    assert "the approver is the deployer" in " ".join(alice.decision.evidence()["violations"]["PS019-GATE-003"])
    carol = _hardened_gather(tmp_path, hardened, "carol-gh")
    assert carol.decision.blocked
    assert "is also the deployer" in " ".join(carol.decision.evidence()["violations"]["PS019-GATE-003"])


@pytest.mark.moto
def test_with_a_people_directory_a_deployer_it_does_not_know_is_refused(tmp_path, hardened, deploy_role):
    """ATTACK: the directory lists people, but a CI login missing from it (an approver's second GitHub account, or one
    the platform team forgot) compared as a stranger, so approver-not-deployer passed. With a directory, a deployer it
    does not know cannot be compared with the approvers and the author: the gate says so and blocks."""
    f = _hardened_gather(tmp_path, hardened, "alice-second-account")
    assert f.decision.blocked
    text = " ".join(f.decision.evidence()["violations"]["PS019-GATE-003"])
    assert "alice-second-account" in text and "not a person in gate.people" in text


def test_a_directory_deployer_rule_is_part_of_each_deployer_comparison():
    """The unknown-deployer rule exists for approver-not-deployer and author-not-deployer only: with both off there is
    nothing to compare, and an unlisted deployer passes."""
    from ps019.gate.decision import Deployer
    from tests.test_gate_people import decide, request_doc, settings, signed

    directory = {"alice": ["alice@example.com"], "bob": ["bob@example.com"], "carol": ["carol@example.com"]}
    data = signed(request_doc(), ("carol", "author"), ("alice", "approver"), ("bob", "approver"))
    stranger = Deployer("someone-gh", "oidc")
    assert decide(data, settings(people=directory), stranger).blocked
    off = settings(people=directory, separation_of_duties={"approver_not_deployer": False,
                                                            "author_not_deployer": False})
    assert decide(data, off, stranger).allowed
    assert decide(data, settings(people={**directory, "ci": ["someone-gh"]}), stranger).allowed


def test_a_github_rerun_can_be_refused_with_a_claim_rule():
    """HELD (with configuration): GitHub's token names the actor who started the run, also on a re-run started by
    someone else (there is no triggering-actor claim), so whoever re-runs a deploy job deploys as the original actor.
    Where that matters, a rule ``claims: {run_attempt: ["1"]}`` refuses re-runs (docs/ci-approvals-guide.md)."""
    from ps019.gate.ci_identity import ClaimRule, OidcIssuer, identity_from_claims, rule_problems
    from ps019.oidc.local_issuer import github_claims

    issuer = OidcIssuer(name="github", issuer="https://token.actions.githubusercontent.com", provider="github",
                        audiences=["ps019"], jwks={"keys": []})
    rule = ClaimRule(issuer="github", repository=["acme/web"], ref=["refs/heads/main"], claims={"run_attempt": ["1"]})

    def ident(attempt):
        return identity_from_claims(issuer, github_claims(repository="acme/web", ref="refs/heads/main", sha="a" * 40,
                                                          actor="bob-gh", run_id="5", run_attempt=attempt), "t")

    assert rule_problems(ident("1"), [rule]) == []
    assert "claim run_attempt=2 is not one of ['1']" in rule_problems(ident("2"), [rule])[0]


# --- break-glass ----------------------------------------------------------------------------------------------------------


def test_a_backdated_grant_does_not_dodge_an_overdue_review(tmp_path):
    """ATTACK: an operator whose colleague's grant has an overdue review opens a grant with ``issued_at`` one minute
    before the review fell due (the open API takes ``now``; a grant carries whatever time its operator signed). The
    block was judged at the grant's own issued_at, so the backdated grant, still inside its 4-hour lifetime, was
    usable while the review was overdue. The block is now judged when the grant is used."""
    from ps019.evidence import Signer, open_store
    from ps019.gate.breakglass import BreakGlassSettings, check_break_glass, close_grant, load_break_glass_records
    from tests.test_breakglass_support import (ALICE, BOB, KEYS, KNOWN_CONTROLS, STACK, T0, gate_settings,
                                               open_alice, who)
    from ps019.gate.breakglass import open_grant

    settings = BreakGlassSettings(review_sla_hours=24, block_on_overdue_review=True)
    signer = Signer.generate()
    with open_store(f"sqlite://{tmp_path / 'evidence.db'}") as store:
        first = open_alice(store, signer)
        close_grant(store, signer, KEYS["alice"], who(ALICE), first.grant_id, gate_settings=gate_settings(),
                    now=T0 + timedelta(hours=1))
        due = T0 + timedelta(hours=25)  # closed at T0+1h, review due 24 h later
        now = due + timedelta(hours=1)
        backdated = open_grant(store, signer, KEYS["bob"], who(BOB), STACK, reason="again", incident="INC-8",
                               ttl=timedelta(hours=4), waive=[], gate_settings=gate_settings(), settings=settings,
                               known_controls=KNOWN_CONTROLS, now=due - timedelta(minutes=1))
        result = check_break_glass(load_break_glass_records(store, STACK), STACK, BOB, now, gate_settings(), settings,
                                   grant_id=backdated.grant_id, known_controls=KNOWN_CONTROLS,
                                   deployer_verified_by="sts")
    assert not result.valid
    assert any(f"blocked by overdue review of {first.grant_id}" in p for p in result.problems)


def test_with_a_people_directory_an_operator_it_does_not_know_cannot_be_reviewed_by_anyone_it_cannot_tell_apart(
        tmp_path):
    """ATTACK: the operator's break-glass identity (her STS session ``…/BreakGlass/alice``) is missing from the
    directory, which lists her e-mail under the person ``asmith``; she records the post-implementation review of her
    own grant with her reviewer key (``alice@example.com``): two names, no link, so "a different person". With a
    directory, a review counts only when both the reviewer and the operator are people it knows."""
    from ps019.evidence import Signer, open_store
    from ps019.gate.breakglass import (BreakGlassSettings, check_break_glass, close_grant, load_break_glass_records,
                                       review_grant)
    from tests.test_breakglass_support import (ALICE, KEYS, KNOWN_CONTROLS, STACK, T0, gate_settings, open_alice,
                                               trusted_entry, who)

    second = signing.generate_private_key()
    base = gate_settings()
    extra = signing.TrustedKey(public_key=signing.public_key_text(second), identity="alice@example.com",
                               roles=["reviewer"])
    gs = base.model_copy(update={"trusted_keys": [*base.trusted_keys, extra],
                                 "people": {"asmith": ["alice@example.com"], "carol": ["carol@example.com"],
                                            "dave": ["dave@example.com"]}})
    assert trusted_entry  # the support module's keys stay the ones the grant uses
    settings = BreakGlassSettings(review_sla_hours=24)
    signer = Signer.generate()
    with open_store(f"sqlite://{tmp_path / 'evidence.db'}") as store:
        grant = open_alice(store, signer, gs=gs)
        close_grant(store, signer, KEYS["alice"], who(ALICE), grant.grant_id, gate_settings=gs,
                    now=T0 + timedelta(hours=1))
        try:
            review_grant(store, signer, second, "alice@example.com", grant.grant_id, notes="fine", links=[],
                         gate_settings=gs, now=T0 + timedelta(hours=2))
        except Exception as exc:  # the CLI path refusing it up front is the better outcome
            assert "gate.people" in str(exc) or "different person" in str(exc), exc
        result = check_break_glass(load_break_glass_records(store, STACK), STACK, ALICE,
                                   T0 + timedelta(hours=30), gs, settings, known_controls=KNOWN_CONTROLS,
                                   deployer_verified_by="sts")
    assert [o.grant_id for o in result.overdue_reviews] == [grant.grant_id]


# --- ConfigureStack: which stack is this? ------------------------------------------------------------------------------


def test_configure_stack_names_the_stack_and_the_deployers_variables_never_fill_it_in():
    """ATTACK: when ConfigureStack arrived with an empty organization (a backend without one), the stack facts took
    ``PULUMI_ORGANIZATION`` from the environment, which the CLI's environment overrides: the deployer chose the
    organization, and with it which stack's change requests, grants, single-use history and evidence chain the
    gate looked at. A ConfigureStack's identity fields are the engine's word; an empty one gets pulumi's default."""
    from ps019.pack.stack import from_configure_stack

    request = SimpleNamespace(organization="", project="web", stack="prod", dry_run=False, config={},
                              config_secret_keys=[], tags={})
    facts = from_configure_stack(request, {"PULUMI_ORGANIZATION": "sandbox", "PULUMI_PROJECT": "other",
                                           "PULUMI_STACK": "dev"})
    assert (facts.organization, facts.project, facts.stack) == ("organization", "web", "prod")
    assert facts.sources["organization"] == "default"


def test_validate_and_approve_refuse_a_request_created_in_the_future(workspace, capsys):
    """The validator's path applies the same rule (R1): an approver is not asked to sign a request the gate refuses."""
    from tests.test_gate_cli import run

    doc = json.loads((workspace / "cr.json").read_text())
    now = datetime.now(timezone.utc).replace(microsecond=0)
    doc.update(created_at=(now + timedelta(days=30)).isoformat(), expires_at=(now + timedelta(days=31)).isoformat(),
               approvals=[])
    (workspace / "future.json").write_text(json.dumps(doc))
    code, out, _ = run(capsys, "change-request", "validate", "future.json")
    assert code == 1 and "created_at" in out and "in the future" in out
    code, _, err = run(capsys, "approve", "future.json", "--key", "keys/alice_example.com.key", "--identity",
                       "alice@example.com")
    assert code == 2 and "refusing to sign" in err and "in the future" in err


# --- OIDC: the issuer signs tokens for every repository on it ----------------------------------------------------------


def _olivias_grant(raw):
    from ps019.evidence import load_signer, open_store
    from ps019.gate.breakglass import BreakGlassGrant, VerifiedIdentity, grant_record, sign_document
    from tests.test_gate_oidc import KEYS, STACK

    now = datetime.now(timezone.utc).replace(microsecond=0)
    grant = sign_document(BreakGlassGrant(
        grant_id="BG-20261203-0123456789ab", stack=STACK, operator="olivia-oncall", identity_source="ci-oidc",
        reason="outage", incident="INC-7", issued_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=1),
        key_id=""), KEYS["olivia"])
    with open_store(raw["evidence"]["store_url"]) as store:
        store.append(grant_record(grant, VerifiedIdentity("olivia-oncall", "ci-oidc", "oidc"), "production"),
                     load_signer())


def test_a_token_from_a_repository_the_rules_do_not_name_identifies_nobody(issuer, tmp_path):
    """ATTACK: GitHub's issuer signs ID tokens for every repository on github.com, and any workflow may ask for the
    audience ``ps019``. Mallory's own repository runs a workflow on ``watch`` (a star) or ``issue_comment``; its actor is
    whoever starred or commented. Olivia, the on-call operator with an open CI grant, stars it; the workflow hands
    Mallory a token whose ``actor`` is ``olivia-oncall``. The gate took the actor of any verified token as the deployer,
    so Mallory's laptop rode Olivia's grant: an emergency change with no change request. A token now identifies its
    actor only when its repository is one the pack config's OIDC rules name for that issuer."""
    from tests.test_gate_oidc import gather, settings, token, violations

    raw = settings(issuer, tmp_path)
    _olivias_grant(raw)
    starred = token(issuer, actor="olivia-oncall", repository="mallory/star-me", ref="refs/heads/main")
    f = gather(tmp_path, raw, {"PS019_ID_TOKEN": starred}, dry_run=False)
    assert f.deployer.verified_by != "oidc"
    assert not f.grant.valid and f.decision.blocked
    assert "mallory/star-me" in " ".join(violations(f)["PS019-GATE-004"])
    own = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, actor="olivia-oncall", ref="refs/heads/hotfix")})
    assert own.grant.valid, own.grant.problems  # her own hotfix job in the configured repository still does


def test_break_glass_open_does_not_take_an_operator_from_a_token_of_another_repository(issuer, tmp_path,
                                                                                       monkeypatch):
    """The same token at ``ps019 break-glass open``: the operator is who a token of a configured repository names
    (the rules' repositories, or the issuer's ``repositories`` when OIDC only identifies operators)."""
    from ps019.errors import InputError
    from ps019.cli.operator_identity import resolve_operator_identity
    from ps019.gate.settings import GateSettings
    from tests.test_gate_oidc import settings, token

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    gate = GateSettings.model_validate(settings(issuer, tmp_path)["gate"])
    starred = {"PS019_ID_TOKEN": token(issuer, actor="olivia-oncall", repository="mallory/star-me")}
    with pytest.raises(InputError, match="mallory/star-me"):
        resolve_operator_identity(starred, None, gate)
    own = {"PS019_ID_TOKEN": token(issuer, actor="olivia-oncall", repository="acme/oncall-tools")}
    with pytest.raises(InputError, match="acme/oncall-tools"):
        resolve_operator_identity(own, None, gate)
    raw = settings(issuer, tmp_path)
    raw["gate"]["oidc"]["issuers"][0]["repositories"] = ["acme/oncall-tools"]
    operator = resolve_operator_identity(own, None, GateSettings.model_validate(raw["gate"]))
    assert (operator.id, operator.source) == ("olivia-oncall", "ci-oidc")


# --- break-glass: an operator cannot extend her own emergency access alone --------------------------------------------


def _append_grant(store, signer, key, operator, *, issued_at, ttl, incident="INC-7"):
    """A grant as the operator's own key signs it, appended without ``open_grant``'s checks (the insider runs the pack
    and holds the evidence signer; the gate must judge what is in the store)."""
    from ps019.gate.breakglass import BreakGlassGrant, grant_record, new_grant_id, sign_document
    from tests.test_breakglass_support import STACK, who

    grant = sign_document(BreakGlassGrant(
        grant_id=new_grant_id(issued_at), stack=STACK, operator=operator, identity_source="aws-sts", reason="outage",
        incident=incident, issued_at=issued_at, expires_at=issued_at + ttl, key_id=""), key)
    store.append(grant_record(grant, who(operator), "production"), signer)
    return grant


@pytest.mark.parametrize("how", ["overlapping", "renewed after closing"])
def test_an_operator_cannot_chain_grants_past_the_maximum_lifetime_without_a_review(tmp_path, how):
    """ATTACK: ``breakGlass.maxTtlHours`` (4 h) bounds one grant, not an operator's emergency access. Alice opens a
    4-hour grant and, ten minutes before it ends, a second one (or closes the first and opens the next at once); the
    overdue-review block only starts ``reviewSlaHours`` (72 h) after the first grant ended, so she changes production
    alone for three days on grants nobody looked at. Now an operator's next grant for a stack needs a review (by
    someone else) of her earlier grants there: renewing or extending an emergency takes a second person."""
    from ps019.evidence import Signer, open_store
    from ps019.gate.breakglass import (BreakGlassSettings, check_break_glass, close_grant, load_break_glass_records,
                                       review_grant)
    from tests.test_breakglass_support import ALICE, CAROL, KEYS, KNOWN_CONTROLS, STACK, T0, gate_settings, who

    settings = BreakGlassSettings()
    signer = Signer.generate()
    with open_store(f"sqlite://{tmp_path / 'evidence.db'}") as store:
        first = _append_grant(store, signer, KEYS["alice"], ALICE, issued_at=T0, ttl=timedelta(hours=4))
        if how == "overlapping":
            second_at = T0 + timedelta(hours=3, minutes=50)
        else:
            close_grant(store, signer, KEYS["alice"], who(ALICE), first.grant_id, gate_settings=gate_settings(),
                        now=T0 + timedelta(hours=3, minutes=59))
            second_at = T0 + timedelta(hours=4)
        second = _append_grant(store, signer, KEYS["alice"], ALICE, issued_at=second_at, ttl=timedelta(hours=4))

        def use(at):
            return check_break_glass(load_break_glass_records(store, STACK), STACK, ALICE, at, gate_settings(),
                                     settings, grant_id=second.grant_id, known_controls=KNOWN_CONTROLS,
                                     deployer_verified_by="sts")

        result = use(second_at + timedelta(hours=3))  # seven hours after her first grant began
        assert not result.valid
        assert any(first.grant_id in p and "review" in p for p in result.problems), result.problems
        if how == "renewed after closing":  # once a colleague has reviewed the first, the next one is hers to use
            review_grant(store, signer, KEYS["carol"], CAROL, first.grant_id, notes="rotated the DB password",
                         links=[], gate_settings=gate_settings(), now=second_at + timedelta(minutes=30))
            assert use(second_at + timedelta(hours=1)).valid


def test_break_glass_open_refuses_an_operators_next_grant_before_her_last_is_reviewed(tmp_path):
    """The same rule at ``ps019 break-glass open`` (a clear refusal, not a grant the gate would refuse later); another
    operator is not held up by Alice's unreviewed grant."""
    from ps019.errors import InputError
    from tests.test_breakglass_support import BOB, KEYS, KNOWN_CONTROLS, STACK, T0, gate_settings, open_alice, who
    from ps019.evidence import Signer, open_store
    from ps019.gate.breakglass import open_grant

    signer = Signer.generate()
    with open_store(f"sqlite://{tmp_path / 'evidence.db'}") as store:
        first = open_alice(store, signer, ttl=timedelta(hours=4))
        with pytest.raises(InputError, match=f"{first.grant_id}.*review"):
            open_alice(store, signer, now=T0 + timedelta(hours=3, minutes=50))
        bobs = open_grant(store, signer, KEYS["bob"], who(BOB), STACK, reason="second incident", incident="INC-9",
                          ttl=timedelta(hours=1), waive=[], gate_settings=gate_settings(),
                          known_controls=KNOWN_CONTROLS, now=T0 + timedelta(hours=1))
        assert bobs.operator == BOB


# --- exceptions: one person waives a finding of her own deployment -------------------------------------------------------


def test_an_approver_cannot_waive_a_finding_of_the_deployment_she_makes_herself(issuer, tmp_path):
    """ATTACK: with ``approverNotDeployer`` (default on) Alice's approval of a change she deploys does not count, but an
    exception she signs alone did: she excepts the medium finding PS019-IAM-005 on her role (below the escalation
    threshold, so no security signature is needed), merges, and the deploy job her merge starts (token actor
    ``alice-gh``, her CI login in ``gate.people``) ships the finding waived: one person accepted the risk and made the
    change. An exception approved by the person deploying is now ignored for her deployment, with the reason, and
    still applies to everyone else's."""
    from ps019.evidence import load_signer, open_store
    from ps019.gate.exceptions import add_exception
    from ps019.gate.settings import GateSettings
    from ps019.pack import facts as facts_mod
    from ps019.pack.run import Run
    from ps019.pack.settings import Settings
    from tests.test_gate_oidc import KEYS, STACK, change_request, settings, token

    people = {"alice": ["alice@example.com", "alice-gh"], "bob": ["bob@example.com", "bob-gh"],
              "olivia": ["olivia-oncall"], "merge-queue": ["deploy-bot"]}
    raw = settings(issuer, tmp_path, people=people)
    urn = "urn:pulumi:prod::web::aws:iam/role:Role::app"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with open_store(raw["evidence"]["store_url"]) as store:
        add_exception(store, load_signer(), KEYS["alice"], control_id="PS019-IAM-005", resource=urn, stack_ref=STACK,
                      reason="needed for the migration", expires_at=now + timedelta(days=30),
                      approved_by="alice@example.com", gate_settings=GateSettings.model_validate(raw["gate"]),
                      now=now - timedelta(minutes=5))

    def deploy(actor):
        env = {"PULUMI_ORGANIZATION": "acme", "PULUMI_PROJECT": "web", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "true",
               "XDG_DATA_HOME": str(tmp_path / "xdg"), "PS019_ID_TOKEN": token(issuer, actor=actor),
               "PS019_CHANGE_REQUEST": change_request(tmp_path, approvers=("bob",))}
        return facts_mod.gather(Run("ps019", "0.0.0", Settings(raw=raw), {}, {"PS019-IAM-005": "mandatory"},
                                    environ=env))

    hers = deploy("alice-gh")
    assert not [w for w in hers.waivers if w.control_id == "PS019-IAM-005"]
    assert any(e is not None and "alice" in reason and "deploy" in reason
               for e, reason in hers.history.exceptions.ignored), hers.history.exceptions.ignored
    theirs = deploy("deploy-bot")  # the merge queue's deployment of someone else's change: the exception applies
    assert [w for w in theirs.waivers if w.control_id == "PS019-IAM-005"]
