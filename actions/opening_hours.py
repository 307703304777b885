"""The clinic's opening hours, from the structured settings in data/clinic.yml
(hours_mon ... hours_sun, timezone, closures): the readable text, one day's hours, and
whether the clinic is open at a given moment (the handoff's "outside hours")."""
from __future__ import annotations

import datetime as dt
import re
from typing import Dict, List, Optional, Tuple

import pytz

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# Words of a message that name a day: the full name or an abbreviation that is no other
# word ("tues", "thurs"; not "sat", "sun" or "wed").
_SHORT = {0: ["mon"], 1: ["tue", "tues"], 2: ["weds"], 3: ["thu", "thur", "thurs"], 4: ["fri"]}
_DAY_WORDS = [(i, re.compile(r"\b(?:" + "|".join([name.lower(), *_SHORT.get(i, [])]) + r")s?\b",
                             re.IGNORECASE)) for i, name in enumerate(DAY_NAMES)]
_WEEKEND = re.compile(r"\bweekends?\b", re.IGNORECASE)

Interval = Optional[Tuple[dt.time, dt.time]]


class HoursError(ValueError):
    """A clinic hours setting is not "HH:MM-HH:MM" or "closed"."""


def parse_day(value: str) -> Interval:
    if value.strip().lower() in ("closed", ""):
        return None
    match = _SPAN.match(value)
    if not match:
        raise HoursError(f"opening hours {value!r}: expected HH:MM-HH:MM or closed")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = dt.time(h1, m1), dt.time(h2, m2)
    if end <= start:
        raise HoursError(f"opening hours {value!r}: closes before it opens")
    return start, end


def week(settings: Dict[str, str]) -> List[Interval]:
    return [parse_day(settings.get(f"hours_{day}", "closed")) for day in DAYS]


def closures(settings: Dict[str, str]) -> List[dt.date]:
    return [dt.date.fromisoformat(d.strip())
            for d in settings.get("closures", "").split(",") if d.strip()]


def _time(t: dt.time) -> str:
    return f"{t.hour}:{t.minute:02d}"


def interval_text(interval: Interval) -> str:
    return "closed" if interval is None else f"{_time(interval[0])}–{_time(interval[1])}"


def hours_text(settings: Dict[str, str]) -> str:
    """"Mon–Fri 8:00–19:00, Sat 9:00–13:00, Sun closed": runs of days with equal hours."""
    days = week(settings)
    parts, start = [], 0
    for i in range(1, len(days) + 1):
        if i == len(days) or days[i] != days[start]:
            label = DAY_NAMES[start][:3] if i - 1 == start else \
                f"{DAY_NAMES[start][:3]}–{DAY_NAMES[i - 1][:3]}"
            parts.append(f"{label} {interval_text(days[start])}")
            start = i
    return ", ".join(parts)


def days_named(text: str) -> List[int]:
    """Weekdays a message names (0 = Monday); "the weekend" is Saturday and Sunday."""
    named = [i for i, pattern in _DAY_WORDS if pattern.search(text)]
    if _WEEKEND.search(text):
        named += [d for d in (5, 6) if d not in named]
    return sorted(named)


def day_text(settings: Dict[str, str], day: int) -> str:
    interval = week(settings)[day]
    if interval is None:
        return f"On {DAY_NAMES[day]}s we're closed."
    return f"On {DAY_NAMES[day]}s we're open {interval_text(interval)}."


def local_now(settings: Dict[str, str], now: Optional[dt.datetime] = None) -> dt.datetime:
    zone = pytz.timezone(settings.get("timezone") or "UTC")
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(zone)


def is_open(settings: Dict[str, str], now: Optional[dt.datetime] = None) -> bool:
    """Whether the clinic is open at `now` (an aware datetime; default: now)."""
    local = local_now(settings, now)
    if local.date() in closures(settings):
        return False
    interval = week(settings)[local.weekday()]
    return interval is not None and interval[0] <= local.time() < interval[1]
