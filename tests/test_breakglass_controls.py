"""The break-glass / exception reporting controls (PS019-GATE-050..052) over their JSON fixtures."""

from __future__ import annotations

import importlib
import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from ps019.controls.base import RunContext
from ps019.gate.breakglass import GrantCheck, OverdueReview
from ps019.gate.exceptions import ControlException, ExceptionsSummary
from ps019.model import Level, ResourceView

import ps019.controls.gate as gate_controls

FIXTURES = Path(gate_controls.__file__).parent / "fixtures"
MODULES = ("break_glass_use", "break_glass_overdue_review", "exception_ignored")
ROOT = ResourceView(urn="urn:pulumi:prod::payments::pulumi:pulumi:Stack::payments-prod", type="pulumi:pulumi:Stack",
                    name="payments-prod", props={}, custom=False)


def _ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def grant_check(data):
    if data is None:
        return None
    overdue = tuple(OverdueReview(o["grant_id"], o["stack"], o["operator"], o["incident"], _ts(o["due_at"]))
                    for o in data.get("overdue_reviews", ()))
    return GrantCheck(grant_id=data.get("grant_id"), valid=data["valid"], problems=tuple(data.get("problems", ())),
                      operator=data.get("operator"), waived_controls=tuple(data.get("waived_controls", ())),
                      expires_at=_ts(data.get("expires_at")), incident=data.get("incident"),
                      reason=data.get("reason"), stack=data.get("stack"), overdue_reviews=overdue)


def exceptions_summary(data):
    if data is None:
        return None
    ignored = tuple((ControlException.model_validate(i["exception"]) if i["exception"] else None, i["reason"])
                    for i in data.get("ignored", ()))
    return ExceptionsSummary(valid=(), ignored=ignored)


def cases():
    for module in MODULES:
        for path in sorted((FIXTURES / module).glob("*/*.json")):
            yield pytest.param(module, path, id=f"{module}/{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("module, path", list(cases()))
def test_fixture(module, path):
    case = json.loads(path.read_text())
    control = importlib.import_module(f"ps019.controls.gate.{module}").CONTROL
    gate = SimpleNamespace(break_glass=grant_check(case.get("break_glass")))
    history = SimpleNamespace(exceptions=exceptions_summary(case.get("exceptions")))
    ctx = RunContext(organization="acme", project="payments", stack="prod", dry_run=True, tier="production", gate=gate,
                     history=history)
    found = list(control.check(ROOT, ctx, control.params({})))
    if path.parent.name == "allow":
        assert found == [], case["description"]
    else:
        assert found, case["description"]
        for violation in found:
            assert violation.urn == ROOT.urn
            for fragment in case.get("message_contains", ()):
                assert fragment in violation.message, (fragment, violation.message)


def test_every_module_has_allow_and_deny_fixtures():
    for module in MODULES:
        assert list((FIXTURES / module / "allow").glob("*.json")), module
        assert list((FIXTURES / module / "deny").glob("*.json")), module


def test_controls_are_advisory_on_the_root_stack_and_not_waivable():
    from ps019.gate.breakglass import BreakGlassSettings
    from ps019.gate.exceptions import ExceptionSettings

    for module in MODULES:
        control = importlib.import_module(f"ps019.controls.gate.{module}").CONTROL
        assert control.level == Level.ADVISORY
        assert control.resource_types == ("pulumi:pulumi:Stack",)
        assert not BreakGlassSettings().is_waivable(control.id)
        assert not ExceptionSettings().is_exceptable(control.id)


def test_controls_read_facts_from_the_context_itself_too():
    """The adapter may hand the GrantCheck on ctx.gate.break_glass or (preferred) directly; both work."""
    from ps019.controls.gate import break_glass_use

    grant = grant_check(json.loads((FIXTURES / "break_glass_use/deny/valid_grant.json").read_text())["break_glass"])
    ctx = RunContext(organization="acme", project="payments", stack="prod", dry_run=False, gate=SimpleNamespace())
    object.__setattr__(ctx, "break_glass", grant)
    assert break_glass_use.grant_check_of(ctx) is grant
