"""Who is on duty at an instant.

Periods are counted in the roster's local wall-clock time, so a weekly hand-over at Monday 09:00
stays at 09:00 across daylight-saving changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from intake.config import Roster, Settings, TeamMember, parse_duration


@dataclass(frozen=True)
class Shift:
    member: TeamMember
    backup: TeamMember
    starts: datetime
    ends: datetime


def _local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("an instant needs a time zone")
    return instant.astimezone(zone).replace(tzinfo=None)


def _roster_start(roster: Roster, zone: ZoneInfo) -> datetime:
    start = roster.start
    return _local_naive(start, zone) if start.tzinfo else start


def shift_at(settings: Settings, instant: datetime) -> Shift:
    roster = settings.roster
    zone = ZoneInfo(roster.timezone)
    period = parse_duration(roster.period)
    start = _roster_start(roster, zone)
    index = (_local_naive(instant, zone) - start) // period
    members = [settings.member(address) for address in roster.rotation]
    on_duty = members[index % len(members)]
    backup = members[(index + 1) % len(members)]
    assert on_duty is not None and backup is not None  # settings validation guarantees it
    starts = start + index * period
    return Shift(
        member=on_duty,
        backup=backup,
        starts=starts.replace(tzinfo=zone),
        ends=(starts + period).replace(tzinfo=zone),
    )


def upcoming_shifts(settings: Settings, instant: datetime, count: int) -> list[Shift]:
    shifts = [shift_at(settings, instant)]
    while len(shifts) < count:
        following = shifts[-1].ends + timedelta(seconds=1)
        shifts.append(shift_at(settings, following))
    return shifts
