"""Opening hours, weekdays and holiday calendars (with make-up working days, 调休).

Shared by IVR time branches and the dialler's calling windows. Weekdays are ISO numbers
(1 = Monday ... 7 = Sunday). A listed holiday is closed whatever its weekday; a listed
make-up working day is open with the hours of a Monday even if it falls on a weekend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ScheduleError(ValueError):
    """A window or calendar definition that does not make sense."""


def parse_hhmm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError) as exc:
        raise ScheduleError(f"bad time {value!r} (HH:MM)") from exc


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"bad date {value!r} (YYYY-MM-DD)") from exc


@dataclass(frozen=True)
class Window:
    """Open on *days* between *start* and *end* (end exclusive; ``24:00`` written ``23:59``)."""

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Window:
        days = raw.get("days", [1, 2, 3, 4, 5, 6, 7])
        if not isinstance(days, list) or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
            raise ScheduleError("window days must be a list of 1..7 (Monday=1)")
        start = parse_hhmm(raw.get("from", "00:00"))
        end = parse_hhmm(raw.get("to", "23:59"))
        if end <= start:
            raise ScheduleError(f"window ends ({end}) before it starts ({start})")
        return cls(frozenset(days), start, end)

    def contains(self, weekday: int, moment: time) -> bool:
        return weekday in self.days and self.start <= moment < self.end


@dataclass
class Calendar:
    """Hours plus holidays and make-up working days, in one timezone."""

    timezone: str = "Asia/Shanghai"
    hours: list[Window] = field(default_factory=list)
    holidays: set[date] = field(default_factory=set)
    workdays: set[date] = field(default_factory=set)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], default_tz: str = "Asia/Shanghai") -> Calendar:
        tz = raw.get("timezone", default_tz)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown timezone {tz!r}") from exc
        hours = [Window.from_dict(w) for w in raw.get("hours", [])]
        return cls(
            timezone=tz,
            hours=hours,
            holidays={parse_day(d) for d in raw.get("holidays", [])},
            workdays={parse_day(d) for d in raw.get("workdays", [])},
        )

    def local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ScheduleError("aware datetime required")
        return moment.astimezone(ZoneInfo(self.timezone))

    def is_holiday(self, moment: datetime) -> bool:
        return self.local(moment).date() in self.holidays

    def effective_weekday(self, day: date) -> int | None:
        """ISO weekday whose hours apply on *day*; ``None`` on a holiday."""
        if day in self.holidays:
            return None
        if day in self.workdays:
            return 1
        return day.isoweekday()

    def is_open(self, moment: datetime, windows: list[Window] | None = None) -> bool:
        local = self.local(moment)
        weekday = self.effective_weekday(local.date())
        if weekday is None:
            return False
        return any(
            w.contains(weekday, local.time())
            for w in (windows if windows is not None else self.hours)
        )

    def next_open(
        self, moment: datetime, windows: list[Window] | None = None, *, horizon_days: int = 60
    ) -> datetime | None:
        """The first instant at or after *moment* when it is open (``None`` within the horizon)."""
        windows = windows if windows is not None else self.hours
        if not windows:
            return None
        if self.is_open(moment, windows):
            return moment
        local = self.local(moment)
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            weekday = self.effective_weekday(day)
            if weekday is None:
                continue
            starts = sorted(w.start for w in windows if weekday in w.days)
            for start in starts:
                candidate = datetime.combine(day, start, tzinfo=local.tzinfo)
                if candidate >= local:
                    return candidate
        return None
