"""Ticket references: PREFIX-YEAR-NNNN, never repeated."""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import F

from intake.models import TicketSequence


async def next_reference(prefix: str, now: datetime) -> str:
    """The next reference for this prefix and year; call inside the ticket's transaction.

    The increment is a single UPDATE, which holds the row lock until the transaction ends, so
    concurrent daemons on PostgreSQL cannot hand out the same number.
    """
    this_year = TicketSequence.filter(prefix=prefix, year=now.year)
    if not await this_year.update(last_number=F("last_number") + 1):
        await TicketSequence.get_or_create(
            prefix=prefix, year=now.year, defaults={"last_number": 0}
        )
        await this_year.update(last_number=F("last_number") + 1)
    number = await this_year.first().values_list("last_number", flat=True)
    return f"{prefix}-{now.year}-{int(number):04d}"  # type: ignore[call-overload]
