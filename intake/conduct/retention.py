"""The retention policy applied to cases: which rule holds a case, when its content is due to
go, and what keeps a case whatever its rule (an open case, a measure still in force, an open case
pointing at it). The rules themselves are `[retention]` (intake.settings.retention)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from tortoise.functions import Max

from intake.settings.retention import RetentionRule
from intake.settings.schema import Settings
from intake.store.models import DECIDED, EventKind, Ticket, TicketEvent

DEFAULT_RULE = "[retention] default"


@dataclass(frozen=True)
class Holding:
    """The rule that holds a case and what it gives."""

    rule: str  # as the settings file writes it
    keep: timedelta | None  # None: forever


def _matches(rule: RetentionRule, ticket: Ticket) -> bool:
    return (
        (rule.kind is None or rule.kind == ticket.kind)
        and (rule.resolution is None or rule.resolution == ticket.resolution)
        and (rule.status is None or rule.status == ticket.status)
    )


def holding(settings: Settings, ticket: Ticket) -> Holding:
    for rule in settings.retention_rules:
        if _matches(rule, ticket):
            return Holding(rule.describe(), rule.keep)
    return Holding(DEFAULT_RULE, settings.retention.default)


def clock_start(
    settings: Settings, ticket: Ticket, last_mail: datetime | None = None
) -> datetime | None:
    """When the case's retention period starts, or None while it is not decided: its closing
    (or resolution), but never before the last mail it received (new evidence restarts the
    clock), an appeal window or a temporary measure has run out."""
    if ticket.status not in DECIDED:
        return None
    decided = [when for when in (ticket.closed_at, ticket.resolved_at) if when is not None]
    start = max(decided) if decided else ticket.updated_at
    if last_mail is not None:
        start = max(start, last_mail)
    if ticket.resolution_ends_at is not None:
        start = max(start, ticket.resolution_ends_at)
    resolution = settings.resolution(ticket.resolution) if ticket.resolution else None
    if resolution is not None and resolution.appealable and ticket.resolved_at is not None:
        start = max(start, ticket.resolved_at + settings.appeals.window)
    return start


def due_at(
    settings: Settings, ticket: Ticket, last_mail: datetime | None = None
) -> datetime | None:
    """When the case's content is due to be purged; None: not (yet) or never."""
    start = clock_start(settings, ticket, last_mail)
    keep = holding(settings, ticket).keep
    if start is None or keep is None:
        return None
    return start + keep


def must_keep(settings: Settings, ticket: Ticket, now: datetime) -> str | None:
    """Why the case must be kept whole whatever is asked (an erasure), or None."""
    if ticket.purged_at is not None:
        return None  # what is left of it holds nothing a ban list or the figures need
    if ticket.status not in DECIDED:
        return f"the case is {ticket.status}: decide or close it first"
    if ticket.resolution_ends_at is not None and ticket.resolution_ends_at > now:
        return (
            f"{ticket.resolution} is in force until {ticket.resolution_ends_at:%Y-%m-%d %H:%M} UTC"
        )
    rule = holding(settings, ticket)
    if ticket.resolution is not None and rule.keep is None:
        return f"{ticket.resolution} is kept forever ({rule.rule})"
    return None


async def pointed_at_by_open_cases() -> set[int]:
    """Cases an undecided case points at (an appeal being heard): kept until it is decided."""
    open_cases = Ticket.exclude(status__in=DECIDED).filter(refers_to_id__isnull=False)
    return set(cast(list[int], await open_cases.values_list("refers_to_id", flat=True)))


async def last_mail(**ticket_filters: Any) -> dict[int, datetime]:
    """When each case (of those the filters, on the ticket, select) last received mail."""
    filters = {f"ticket__{key}": value for key, value in ticket_filters.items()}
    rows = (
        await TicketEvent.filter(kind=EventKind.INBOUND, **filters)
        .annotate(last=Max("created_at"))
        .group_by("ticket_id")
        .values_list("ticket_id", "last")
    )
    return {int(ticket_id): when for ticket_id, when in rows}
