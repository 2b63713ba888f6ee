"""Change windows: when a tier may be changed (``gate.rules.<tier>.changeWindows``). Pure.

* ``allowed``: weekly windows in a time zone (``{"days": ["mon", ..., "fri"], "start": "09:00", "end": "17:00",
  "timezone": "Europe/Berlin"}``). When any are configured, a normal or standard change outside all of them is
  blocked. A window whose end is before its start runs past midnight.
* ``freezes``: named periods (``{"name": "year-end freeze", "start": "2026-12-18T18:00", "end": "2027-01-04T08:00",
  "timezone": "Europe/Berlin"}``) in which a normal or standard change is blocked.

An emergency change is not held by a window: it goes through break-glass only (the tier's emergency rule), which is
the documented way to change production in a freeze. Every message names the window or freeze and its time zone.
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from None
    return value


class WeeklyWindow(_Model):
    name: str = Field("deploy window", description="what the message calls it")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        min_length=1, description="days the window opens (in its time zone)")
    start: str = Field(description="HH:MM local time the window opens")
    end: str = Field(description="HH:MM local time it closes (before start: it runs past midnight)")
    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/Berlin")

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not HH:MM")
        return value

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        start, end = time.fromisoformat(self.start), time.fromisoformat(self.end)
        day = DAYS[local.weekday()]
        now = local.time()
        if start <= end:
            return day in self.days and start <= now < end
        # past midnight: opened today (after start) or yesterday (before end)
        yesterday = DAYS[(local.weekday() - 1) % 7]
        return (day in self.days and now >= start) or (yesterday in self.days and now < end)

    def describe(self) -> str:
        return f"{self.name} ({', '.join(self.days)} {self.start}-{self.end} {self.timezone})"


class Freeze(_Model):
    name: str = Field(min_length=1, description="what the message calls it, e.g. year-end freeze")
    start: datetime = Field(description="local date-time the freeze begins (no offset; see timezone)")
    end: datetime = Field(description="local date-time it ends")
    timezone: str = Field("UTC", description="IANA time zone of start and end")

    _tz = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @model_validator(mode="after")
    def _order(self) -> "Freeze":
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start and end are local times without an offset; put the zone in timezone")
        if self.end <= self.start:
            raise ValueError("end is not after start")
        return self

    def contains(self, moment: datetime) -> bool:
        zone = ZoneInfo(self.timezone)
        return self.start.replace(tzinfo=zone) <= moment < self.end.replace(tzinfo=zone)

    def describe(self) -> str:
        return f"{self.name} ({self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} {self.timezone})"


class ChangeWindows(_Model):
    allowed: list[WeeklyWindow] = Field(default_factory=list, description="weekly windows; empty: any time")
    freezes: list[Freeze] = Field(default_factory=list, description="periods in which nothing but break-glass changes")


def window_problem(windows: ChangeWindows | None, moment: datetime) -> str | None:
    """Why a normal or standard change may not run at ``moment`` (naming the freeze or the windows), else None."""
    if windows is None:
        return None
    for freeze in windows.freezes:
        if freeze.contains(moment):
            return f"the change falls in the {freeze.describe()}"
    if windows.allowed and not any(w.contains(moment) for w in windows.allowed):
        return ("the change is outside the allowed window(s) " + "; ".join(w.describe() for w in windows.allowed)
                + f" (now {moment.astimezone(ZoneInfo(windows.allowed[0].timezone)):%a %H:%M %Z})")
    return None
