"""Read-only views of the database for the command line, as plain JSON-ready dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from intake.conduct.case_record import iso
from intake.conduct.notes import note
from intake.errors import IntakeError
from intake.mail.headers import raw_headers
from intake.settings.schema import Settings
from intake.store.lag import lags_by_inbound
from intake.store.models import (
    NOT_SENT,
    InboundMessage,
    InboundState,
    OutboundMessage,
    OutboundState,
    Ticket,
)

RECENT = 20


def _age(since: datetime) -> str:
    seconds = int((datetime.now(UTC) - since).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


async def tickets(limit: int | None) -> list[dict[str, Any]]:
    query = Ticket.all().order_by("-id").prefetch_related("assignee")
    rows = await (query.limit(limit) if limit else query)
    return [
        {
            "ref": row.ref,
            "kind": row.kind,
            "status": str(row.status),
            "reporter": row.reporter_email,
            "assignee": row.assignee.email if row.assignee else None,
            "subject": row.subject,
            "created_at": iso(row.created_at),
            "age": _age(row.created_at),
        }
        for row in rows
    ]


async def inbound(limit: int | None, failed_only: bool = False) -> list[dict[str, Any]]:
    query = InboundMessage.all().order_by("-id")
    if failed_only:
        query = query.filter(state=InboundState.FAILED)
    query = query.only(
        "id",
        "message_id",
        "state",
        "outcome",
        "reason",
        "received_at",
        "arrived_at",
        "ticket_id",
        "size",
        "attempts",
        "last_error",
    )
    rows = await (query.limit(limit) if limit else query)
    lags = await lags_by_inbound([row.id for row in rows])
    refs = {
        ticket.id: ticket.ref
        for ticket in await Ticket.filter(id__in=[r.ticket_id for r in rows if r.ticket_id])
    }
    return [
        {
            "id": row.id,
            "message_id": row.message_id,
            "state": str(row.state),
            "outcome": row.outcome,
            "reason": row.reason,
            "ticket": refs.get(row.ticket_id) if row.ticket_id else None,
            "received_at": iso(row.received_at),
            "arrived_at": iso(row.arrived_at),
            "acknowledged_after_seconds": _seconds(lags.get(row.id)),
            "size": row.size,
            "attempts": row.attempts,
            "last_error": row.last_error,
        }
        for row in rows
    ]


def _seconds(duration: timedelta | None) -> float | None:
    return None if duration is None else round(duration.total_seconds(), 1)


async def inbound_detail(inbound_id: int) -> dict[str, Any]:
    """One stored message: its state, error, size and headers (not its body)."""
    row = await InboundMessage.get_or_none(id=inbound_id)
    if row is None:
        raise IntakeError(f"no inbound message {inbound_id}")
    ticket = await Ticket.get_or_none(id=row.ticket_id) if row.ticket_id else None
    return {
        "id": row.id,
        "message_id": row.message_id,
        "state": str(row.state),
        "outcome": row.outcome,
        "reason": row.reason,
        "ticket": ticket.ref if ticket else None,
        "mailbox": row.mailbox,
        "folder": row.folder,
        "uid": row.uid,
        "arrived_at": iso(row.arrived_at),
        "received_at": iso(row.received_at),
        "acknowledged_after_seconds": _seconds((await lags_by_inbound([row.id])).get(row.id)),
        "size": row.size,
        "sha256": row.sha256,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "headers": [list(header) for header in raw_headers(row.raw_bytes)],
    }


async def retry_inbound(ids: list[int] | None) -> int:
    """Put parked messages back in the queue (all of them when `ids` is None)."""
    query = InboundMessage.filter(state=InboundState.FAILED)
    if ids is not None:
        query = query.filter(id__in=ids)
    return await query.update(
        state=InboundState.PENDING, outcome=None, attempts=0, next_attempt_at=None
    )


async def outbox(limit: int | None) -> list[dict[str, Any]]:
    query = OutboundMessage.all().order_by("-id").prefetch_related("ticket")
    rows = await (query.limit(limit) if limit else query)
    return [
        {
            "id": row.id,
            "kind": row.kind,
            "ticket": row.ticket.ref if row.ticket else None,
            "recipients": list(row.recipients),
            "subject": row.subject,
            "message_id": row.message_id,
            "state": str(row.state),
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": iso(row.created_at),
            "sent_at": iso(row.sent_at),
        }
        for row in rows
    ]


async def outbox_detail(outbound_id: int) -> dict[str, Any]:
    """One outbound email: its state, delivery history and headers (not its body)."""
    row = await _outbound(outbound_id)
    ticket = await Ticket.get_or_none(id=row.ticket_id) if row.ticket_id else None
    return {
        "id": row.id,
        "kind": row.kind,
        "ticket": ticket.ref if ticket else None,
        "sender": row.sender,
        "recipients": list(row.recipients),
        "subject": row.subject,
        "message_id": row.message_id,
        "state": str(row.state),
        "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at),
        "last_error": row.last_error,
        "claimed_by": row.claimed_by,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "size": len(row.raw_bytes),
        "headers": [list(header) for header in raw_headers(row.raw_bytes)],
    }


async def _outbound(outbound_id: int) -> OutboundMessage:
    row = await OutboundMessage.get_or_none(id=outbound_id)
    if row is None:
        raise IntakeError(f"no outbound message {outbound_id}")
    return row


async def retry_outbound(ids: list[int] | None) -> list[int]:
    """Queue failed (or deferred) emails again, due now, with their attempts counted afresh;
    all failed ones when `ids` is None. Returns the ids queued."""
    if ids is None:
        query = OutboundMessage.filter(state=OutboundState.FAILED)
    else:
        rows = [await _outbound(outbound_id) for outbound_id in ids]
        for row in rows:
            if row.state not in NOT_SENT:
                raise IntakeError(
                    f"outbound {row.id} is {row.state}: only mail not sent is retried"
                )
        query = OutboundMessage.filter(id__in=ids)
    candidates = cast(list[int], await query.values_list("id", flat=True))
    # In one statement, and only rows still not sent and not being sent right now: a row a
    # delivery run sends (or someone cancels) meanwhile is left as it becomes.
    idle = Q(claimed_until__isnull=True) | Q(claimed_until__lte=datetime.now(UTC))
    async with in_transaction():
        waiting = OutboundMessage.select_for_update().filter(
            Q(id__in=candidates, state__in=NOT_SENT) & idle
        )
        queued = cast(list[int], await waiting.values_list("id", flat=True))
        await OutboundMessage.filter(id__in=queued).update(
            state=OutboundState.QUEUED, attempts=0, next_attempt_at=None, last_error=None
        )
    return queued


async def cancel_outbound(settings: Settings, outbound_id: int, reason: str, who: str) -> None:
    """Withdraw an email not yet sent; the case's thread records who did it and why."""
    async with in_transaction():
        row = await OutboundMessage.select_for_update().get_or_none(id=outbound_id)
        if row is None:  # locked: a delivery run that claims it now skips it
            raise IntakeError(f"no outbound message {outbound_id}")
        if row.state not in NOT_SENT:
            raise IntakeError(f"outbound {row.id} is {row.state}: only mail not sent is cancelled")
        if row.claimed_by and row.claimed_until and row.claimed_until > datetime.now(UTC):
            raise IntakeError(f"outbound {row.id} is being sent right now; try again in a minute")
        await OutboundMessage.filter(id=row.id).update(
            state=OutboundState.CANCELLED, next_attempt_at=None, last_error=f"cancelled: {reason}"
        )
        ticket = await Ticket.get_or_none(id=row.ticket_id) if row.ticket_id else None
        if ticket is not None:
            to = ", ".join(row.recipients)
            await note(
                settings,
                ticket,
                f"Email {row.id} ({row.kind} to {to}) cancelled by {who} before it was sent:"
                f" {reason}",
            )
