"""Case references: PREFIX-YEAR-NNNN, never repeated; written by `format_reference`, found in text
by `case_reference`, a pair tested round trip."""

from __future__ import annotations

import re
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
    return format_reference(prefix, now.year, int(rows[0]["last_number"]))


def format_reference(prefix: str, year: int, number: int) -> str:
    return f"{prefix}-{year}-{number:04d}"


def case_reference(prefix: str, text: str) -> str | None:
    """The first case reference (`COC-2026-0001`) written in `text`."""
    if f"{prefix.lower()}-" not in text.lower():  # the common case, at C speed
        return None
    match = re.search(rf"(?<![\w-]){re.escape(prefix)}-\d{{4}}-\d+\b", text, re.IGNORECASE)
    return match.group(0).upper() if match else None


def reference_in(prefix: str, *texts: str) -> str | None:
    """The first case reference in the first of `texts` that has one (a subject, then a body)."""
    return next(filter(None, (case_reference(prefix, text) for text in texts)), None)
