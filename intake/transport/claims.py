"""Outbound rows are claimed before they are sent, so daemons sharing a database never send
one twice: a delivery run takes a group of due rows (FOR UPDATE SKIP LOCKED on PostgreSQL,
BEGIN IMMEDIATE on SQLite) and writes its name and an expiry into them in one transaction;
other runs skip claimed rows until the claim expires. A run renews its claim while it is still
sending, gives back what it did not attempt, and clears the claim as it records each row.

A daemon killed mid-group leaves its claim to expire (`[outbound] claim_for`, default 5
minutes), after which another daemon sends those rows. The only duplicates are the rows its
SMTP server had accepted and it had not yet recorded (at most SENT_BACKLOG_MAX), as for a
single daemon killed at that moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import cast

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from intake.store.lag import arrivals
from intake.store.leases import HOLDER
from intake.store.models import OutboundMessage, OutboundState

UNCLAIMED = {"claimed_by": None, "claimed_until": None}


class Claim:
    def __init__(self, lease: timedelta) -> None:
        self.lease = lease
        self.until = datetime.now(UTC)
        self.arrivals: dict[int, datetime] = {}  # of the inbound mail the claimed rows answer
        self.lost: set[int] = set()  # rows whose claim ran out and went to another daemon

    async def take(self, limit: int) -> list[OutboundMessage]:
        """Claim up to `limit` due rows, oldest first."""
        now = datetime.now(UTC)
        async with in_transaction():
            rows = await (
                OutboundMessage.select_for_update(skip_locked=True)
                .filter(state=OutboundState.QUEUED)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
                .order_by("id")
                .limit(limit)
            )
            if rows:
                self.until = now + self.lease
                await OutboundMessage.filter(id__in=[row.id for row in rows]).update(
                    claimed_by=HOLDER, claimed_until=self.until
                )
        answered = {row.in_reply_to_id for row in rows if row.in_reply_to_id is not None}
        self.arrivals = await arrivals(answered) if answered else {}
        return list(rows)

    async def keep(self, rows: Sequence[OutboundMessage]) -> None:
        """Before the next send: renew the claim on the rows left once a third of it has run.
        A claim can be lost (a send that took longer than the claim, another daemon taking the
        rows after it ran out); rows no longer ours are another daemon's to send (see `ours`)."""
        now = datetime.now(UTC)
        if not rows or self.until - now > self.lease * 2 / 3:
            return
        ids = [row.id for row in rows]
        ours = OutboundMessage.filter(id__in=ids, claimed_by=HOLDER, state=OutboundState.QUEUED)
        self.until = now + self.lease
        if await ours.update(claimed_until=self.until) == len(ids):
            return
        held = await OutboundMessage.filter(id__in=ids, claimed_by=HOLDER).values_list(
            "id", flat=True
        )
        self.lost.update(set(ids) - set(cast(list[int], held)))

    def ours(self, row: OutboundMessage) -> bool:
        return row.id not in self.lost

    async def release(self, rows: Sequence[OutboundMessage]) -> None:
        """Give back rows this run did not attempt, for the next run of any daemon."""
        if rows:
            await OutboundMessage.filter(
                id__in=[row.id for row in rows], claimed_by=HOLDER, state=OutboundState.QUEUED
            ).update(**UNCLAIMED)
