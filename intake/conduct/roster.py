"""Who is on duty at an instant, and who is the backup.

Periods are counted in the roster's local wall-clock time, so a weekly hand-over at Monday 09:00
stays at 09:00 across daylight-saving changes. Overrides apply on top of the rotation: a swap
gives one member's duty to another for a while; a member away is skipped, so the next on the rota
is on duty (and the one after that is the backup).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from intake.settings.schema import Roster, Settings, TeamMember


def _aware(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _present(roster: Roster, email: str, instant: datetime, zone: ZoneInfo) -> str | None:
    """Who stands in for `email` at `instant`: a member swapped in, else `email` itself, or None
    when whoever that is is away."""
    for swap in roster.swaps:
        if swap.covers == email and _aware(swap.start, zone) <= instant < _aware(swap.end, zone):
            email = swap.member
            break
    for away in roster.away:
        if away.member == email and _aware(away.start, zone) <= instant < _aware(away.end, zone):
            return None
    return email


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


def _period_index(roster: Roster, instant: datetime, zone: ZoneInfo) -> int:
    return (_local_naive(instant, zone) - _roster_start(roster, zone)) // roster.period


def duty_order(settings: Settings, instant: datetime) -> list[str]:
    """Everyone who may take a case at `instant`, in order: the rota from the member on duty
    (swaps applied, absent members skipped), then the leads not on it who are present."""
    roster = settings.roster
    zone = ZoneInfo(roster.timezone)
    index = _period_index(roster, instant, zone)
    rota = roster.rotation
    order: list[str] = []
    for email in (
        *(rota[(index + step) % len(rota)] for step in range(len(rota))),
        *(lead.email for lead in settings.leads),
    ):
        present = _present(roster, email, instant, zone)
        if present is not None and present not in order:
            order.append(present)
    return order


def shift_at(settings: Settings, instant: datetime) -> Shift:
    """The member on duty and the backup. For a rota of one, the backup is the first other
    lead; when everyone is away, the rota as written, so that somebody is always named."""
    roster = settings.roster
    zone = ZoneInfo(roster.timezone)
    period = roster.period
    index = _period_index(roster, instant, zone)
    order = duty_order(settings, instant) or [roster.rotation[index % len(roster.rotation)]]
    on_duty = settings.member(order[0])
    backup = settings.member(order[1] if len(order) > 1 else order[0])
    assert on_duty is not None and backup is not None  # settings validation guarantees it
    starts = _roster_start(roster, zone) + index * period
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
