"""The queue figures from the database, shared by every daemon: what systemd's status line and
`intake check` report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from intake.mail.sanitize import short_duration
from intake.store.lag import arrival
from intake.store.models import InboundMessage, InboundState, OutboundMessage, OutboundState


@dataclass(frozen=True)
class QueueFigures:
    inbound_waiting: int  # stored, not yet processed
    inbound_parked: int  # failed too often: `intake inbound retry`
    outbound_queued: int
    outbound_failed: int  # refused for good: `intake outbox retry`
    oldest_waiting: timedelta | None  # since the arrival of the oldest message waiting

    def line(self) -> str:
        oldest = f" (oldest {short_duration(self.oldest_waiting)})" if self.oldest_waiting else ""
        return (
            f"inbound {self.inbound_waiting} waiting{oldest}, {self.inbound_parked} parked;"
            f" outbound {self.outbound_queued} queued, {self.outbound_failed} failed"
        )


async def oldest_waiting(now: datetime) -> tuple[int, timedelta] | None:
    """The oldest message stored and not yet processed: its id and how long since it arrived."""
    waiting = InboundMessage.filter(state=InboundState.PENDING)
    oldest = await waiting.order_by("id").first().only("id", "arrived_at", "received_at")
    if oldest is None:
        return None
    return oldest.id, max(now - arrival(oldest.arrived_at, oldest.received_at), timedelta(0))


async def queue_figures(now: datetime) -> QueueFigures:
    oldest = await oldest_waiting(now)
    return QueueFigures(
        inbound_waiting=await InboundMessage.filter(state=InboundState.PENDING).count(),
        inbound_parked=await InboundMessage.filter(state=InboundState.FAILED).count(),
        outbound_queued=await OutboundMessage.filter(state=OutboundState.QUEUED).count(),
        outbound_failed=await OutboundMessage.filter(state=OutboundState.FAILED).count(),
        oldest_waiting=oldest[1] if oldest else None,
    )
