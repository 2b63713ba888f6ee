"""Change windows with time zones (PS019-GATE-009) and single-use change requests.

Attacks: an approved request deployed three times; a normal change pushed during a freeze or at 3 a.m. local time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ps019.gate.settings import GateSettings
from ps019.gate.windows import ChangeWindows, window_problem

BERLIN_WINDOW = {"name": "weekday deploy window", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                 "end": "17:00", "timezone": "Europe/Berlin"}
FREEZE = {"name": "year-end freeze", "start": "2026-12-18T18:00", "end": "2027-01-04T08:00",
          "timezone": "Europe/Berlin"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


@pytest.mark.parametrize("moment, held", [
    ("2026-11-20T10:00:00+01:00", False),  # Friday 10:00 in Berlin
    ("2026-11-20T08:30:00+00:00", False),  # 09:30 in Berlin
    ("2026-11-20T07:30:00+00:00", True),   # 08:30 in Berlin: before the window (08:30 UTC would be inside)
    ("2026-11-21T12:00:00+01:00", True),   # Saturday
    ("2026-12-21T10:00:00+01:00", True),   # a Monday inside the freeze
    ("2027-01-04T09:00:00+01:00", False),  # the freeze ended at 08:00 Berlin time
])
def test_windows_and_freezes_are_judged_in_their_time_zone(moment, held):
    windows = ChangeWindows.model_validate({"allowed": [BERLIN_WINDOW], "freezes": [FREEZE]})
    problem = window_problem(windows, at(moment))
    assert bool(problem) is held, problem
    if held:
        assert "Europe/Berlin" in problem


def test_a_window_past_midnight():
    night = ChangeWindows.model_validate({"allowed": [{"days": ["sat"], "start": "22:00", "end": "02:00",
                                                       "timezone": "UTC"}]})
    assert window_problem(night, at("2026-11-21T23:00:00+00:00")) is None  # Saturday 23:00
    assert window_problem(night, at("2026-11-22T01:30:00+00:00")) is None  # Sunday 01:30, opened Saturday
    assert window_problem(night, at("2026-11-22T23:00:00+00:00"))          # Sunday 23:00


@pytest.mark.parametrize("bad", [{"allowed": [{**BERLIN_WINDOW, "timezone": "Mars/Olympus"}]},
                                 {"allowed": [{**BERLIN_WINDOW, "start": "9am"}]},
                                 {"freezes": [{**FREEZE, "end": "2026-12-01T00:00"}]},
                                 {"freezes": [{**FREEZE, "start": "2026-12-18T18:00+01:00"}]}])
def test_unusable_windows_are_refused_in_the_settings(bad):
    with pytest.raises(ValidationError):
        ChangeWindows.model_validate(bad)


def _gate_with(windows: dict) -> GateSettings:
    return GateSettings.model_validate({"rules": {"production": {"changeWindows": windows}}})


def test_the_gate_holds_a_normal_change_in_a_freeze_and_names_it_but_not_an_emergency_under_break_glass():
    from ps019.gate import change_request as crm
    from ps019.gate.decision import WINDOW, Deployer, GateInputs, decide_gate
    from tests.test_gate_people import COMMIT, STACK, TOKEN, decide, request_doc, settings, signed

    base = settings()
    gate = base.model_copy(update={"rules": {**base.rules, "production": base.rules["production"].model_copy(
        update={"change_windows": ChangeWindows.model_validate({"freezes": [FREEZE]})})}})
    data = signed(request_doc(), ("carol", "author"), ("alice", "approver"), ("bob", "approver"))
    inside = decide(data, gate)
    assert inside.allowed  # NOW (2026-11-20) is before the freeze
    def run(now, grant=None, body=data):
        return decide_gate(GateInputs(
            stack_ref=STACK, tier="production", tier_source="pattern", now=now, ci=TOKEN.ci_run(), ci_identity=TOKEN,
            change_request=crm.ChangeRequestSource("env", "/cr.json", data=body) if body else None,
            deployer=Deployer("deploy-bot", "oidc"), artifact_commit=COMMIT, artifact_source="token",
            break_glass=grant), gate)

    frozen = run(at("2026-12-21T10:00:00+01:00"))
    assert frozen.blocked and "year-end freeze (2026-12-18 18:00 to 2027-01-04 08:00 Europe/Berlin)" in " ".join(
        v.message for v in frozen.violations[WINDOW])
    grant = type("Grant", (), {"grant_id": "BG-1", "valid": True, "problems": (), "notices": ()})()
    emergency = run(at("2026-12-21T10:00:00+01:00"), grant=grant, body=None)
    assert not emergency.violations[WINDOW] and emergency.change_class == "emergency"


def test_the_window_settings_parse_from_the_pack_config():
    gate = _gate_with({"allowed": [BERLIN_WINDOW], "freezes": [FREEZE]})
    assert gate.rules["production"].change_windows.freezes[0].name == "year-end freeze"
    assert gate.rules["staging"].change_windows is None  # other tiers keep their defaults


# --- single use -------------------------------------------------------------------------------------------------------


def test_a_single_use_request_deploys_a_stack_once(tmp_path):
    from tests.test_gate_oidc import _deploy, change_request, gather, settings as oidc_settings, token, violations
    from ps019.oidc.local_issuer import LocalIssuer

    issuer = LocalIssuer("https://token.actions.example.test")
    raw = oidc_settings(issuer, tmp_path, rules={"production": {"normal": {"singleUse": True}}})
    cr = change_request(tmp_path)
    first = _deploy(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="1"), "PS019_CHANGE_REQUEST": cr})
    assert first.decision.allowed, violations(first)
    again = gather(tmp_path, raw, {"PS019_ID_TOKEN": token(issuer, run_id="2"), "PS019_CHANGE_REQUEST": cr},
                   dry_run=False)
    assert again.decision.blocked
    assert "single-use" in " ".join(violations(again)["PS019-GATE-001"])
    # without the rule, the same request may deploy again from another run
    reusable = oidc_settings(issuer, tmp_path)
    assert gather(tmp_path, reusable, {"PS019_ID_TOKEN": token(issuer, run_id="3"), "PS019_CHANGE_REQUEST": cr},
                  dry_run=False).decision.allowed
