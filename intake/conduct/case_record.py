"""A case as a record: everything the case holds, as a JSON-ready dict, for `intake ticket`
and `intake export` (each read is audited by its caller)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from intake.errors import IntakeError
from intake.store.models import Attachment, EventKind, Party, PartyRole, Ticket, TicketEvent


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


async def find_case(ref: str) -> Ticket:
    ticket = await Ticket.get_or_none(ref=ref.upper())
    if ticket is None:
        raise IntakeError(f"no ticket {ref}")
    return ticket


def _audience(event: TicketEvent) -> str:
    """Who could read this entry: the team only, or (also) someone outside it."""
    party = event.party
    if event.internal:
        return "team only"
    if event.kind == EventKind.OUTBOUND and party is not None:
        return f"sent to the {party.role}"
    if event.kind == EventKind.INBOUND and party is not None and party.role == PartyRole.TEAM:
        return "relayed to the reporter"
    if event.kind == EventKind.INBOUND and party is not None:
        return f"written by the {party.role}"
    return "team only"


async def case_record(row: Ticket) -> dict[str, Any]:
    """Everything `row` holds (find it with find_case)."""
    await row.fetch_related("assignee", "refers_to")
    events = (
        await row.events.all().order_by("created_at", "id").prefetch_related("party", "outbound")
    )
    attachments = await Attachment.filter(ticket=row).order_by("id")
    parties = await Party.filter(ticket=row).order_by("id")
    return {
        "ref": row.ref,
        "kind": row.kind,
        "status": str(row.status),
        "reporter": f"{row.reporter_name} <{row.reporter_email}>"
        if row.reporter_name
        else row.reporter_email,
        "assignee": row.assignee.email if row.assignee else None,
        "subject": row.subject,
        "created_at": iso(row.created_at),
        "acknowledged_at": iso(row.acknowledged_at),
        "first_response_at": iso(row.first_response_at),
        "urgent": row.urgent,
        "kind_reason": row.kind_reason,
        "resolution_ends_at": iso(row.resolution_ends_at),
        "refers_to": row.refers_to.ref if row.refers_to else None,
        "resolution": row.resolution,
        "resolution_reason": row.resolution_reason,
        "resolved_by": row.resolved_by,
        "resolved_at": iso(row.resolved_at),
        "closed_at": iso(row.closed_at),
        "purged_at": iso(row.purged_at),
        "parties": [
            {
                "role": str(party.role),
                "email": party.email,
                "name": party.name,
                "excluded": party.excluded,
                "excluded_reason": party.excluded_reason,
            }
            for party in parties
        ],
        "events": [
            {
                "kind": str(event.kind),
                "author": event.author,
                "internal": event.internal,
                "audience": _audience(event),
                "to": list(event.outbound.recipients) if event.outbound else [],
                "delivery": str(event.outbound.state) if event.outbound else None,
                "created_at": iso(event.created_at),
                "body": event.body,
                "html": event.html,
            }
            for event in events
        ],
        "attachments": [
            {
                "filename": item.filename,
                "content_type": item.content_type,
                "size": item.size,
                "sha256": item.sha256,
            }
            for item in attachments
        ],
    }
