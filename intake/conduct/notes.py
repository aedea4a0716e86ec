"""What a case records for the team: internal notes, and the report as the case began."""

from __future__ import annotations

from typing import Any

from intake.mail.sanitize import db_text
from intake.settings.schema import Settings
from intake.store.models import (
    EventKind,
    Ticket,
    TicketEvent,
)

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"  # instants shown in emails to the team


async def note(settings: Settings, ticket: Ticket, body: str, author: str | None = None) -> None:
    """An internal entry in the case's thread: what Intake decided, or a team member's note."""
    await TicketEvent.create(
        ticket=ticket,
        kind=EventKind.NOTE,
        author=author or settings.organisation.address,
        body=db_text(body),
        internal=True,
    )


async def report_text(ticket: Ticket) -> str:
    """The text of the message the case began with."""
    first = await TicketEvent.filter(ticket=ticket, kind=EventKind.INBOUND).order_by("id").first()
    return first.body if first else ""


async def recorded_report(ticket: Ticket) -> dict[str, Any]:
    """The report as the case records it, for the templates that carry it."""
    return {
        "reporter": ticket.reporter_email or "(no sender address)",
        "subject": ticket.subject,
        "received": ticket.created_at.strftime(TIME_FORMAT),
        "text": await report_text(ticket),
        "attachments": [],
    }
