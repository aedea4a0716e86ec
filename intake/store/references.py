"""Ticket references: PREFIX-YEAR-NNNN, never repeated."""

from __future__ import annotations

from datetime import datetime

from intake.store.models import TicketSequence

# One statement instead of update-then-select: this runs once per report, on the hot path.
_NEXT = {
    "sqlite": "UPDATE ticket_sequence SET last_number = last_number + 1"
    " WHERE prefix = ? AND year = ? RETURNING last_number",
    "postgres": "UPDATE ticket_sequence SET last_number = last_number + 1"
    " WHERE prefix = $1 AND year = $2 RETURNING last_number",
}


async def next_reference(prefix: str, now: datetime) -> str:
    """The next reference for this prefix and year; call inside the ticket's transaction.

    The increment is a single UPDATE, which holds the row lock until the transaction ends, so
    concurrent daemons on PostgreSQL cannot hand out the same number.
    """
    db = TicketSequence._meta.db
    sql = _NEXT[db.capabilities.dialect]
    rows = await db.execute_query_dict(sql, [prefix, now.year])
    if not rows:
        await TicketSequence.get_or_create(
            prefix=prefix, year=now.year, defaults={"last_number": 0}
        )
        rows = await db.execute_query_dict(sql, [prefix, now.year])
    return f"{prefix}-{now.year}-{int(rows[0]['last_number']):04d}"
