"""Send queued outbox rows: one reused connection per batch, backoff on 4xx, final state on 5xx.

An accepted row is recorded as sent by a background writer, a few at a time and never more than
SENT_BACKLOG_MAX behind (see _SentLedger), so a crash can re-send at most those few messages, and
never lose one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tortoise.expressions import F

from intake.errors import DeliveryError
from intake.mail.sanitize import short_duration
from intake.settings.retry import backoff
from intake.settings.schema import OutboundSettings, Settings
from intake.settings.templates import TemplateName
from intake.store.leases import HOLDER
from intake.store.models import OutboundMessage, OutboundState
from intake.transport.claims import UNCLAIMED, Claim
from intake.transport.stages import Upstream
from intake.transport.transports import (
    ConnectionLost,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    make_transport,
)

log = logging.getLogger("intake.deliver")

SENT_BACKLOG_MAX = 5
SENT_GROUP = 3  # accepted rows recorded together by one UPDATE (each rewrites its row)


@dataclass
class DeliveryStats:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    # seconds from the arrival of the mail answered to the acknowledgement's sending
    acknowledged_after: list[float] = field(default_factory=list)


async def _record_failure(
    row: OutboundMessage, config: OutboundSettings, detail: str, permanent: bool
) -> bool:
    """Store the failure; returns True when the row is now failed for good."""
    row.attempts += 1
    row.last_error = detail
    final = permanent or row.attempts >= config.max_attempts
    if final:
        row.state = OutboundState.FAILED
        row.next_attempt_at = None
    else:
        delay = backoff(config.retry_after, row.attempts, config.max_retry_after)
        row.next_attempt_at = datetime.now(UTC) + delay
    # Only while the row is still ours and queued: a claim lost meanwhile (another daemon sent
    # it, or someone cancelled it) must not be undone by this run's stale copy.
    await OutboundMessage.filter(id=row.id, claimed_by=HOLDER, state=OutboundState.QUEUED).update(
        attempts=row.attempts,
        last_error=row.last_error,
        state=row.state,
        next_attempt_at=row.next_attempt_at,
        **UNCLAIMED,
    )
    return final


async def deliver_once(
    settings: Settings,
    stop: asyncio.Event | None = None,
    upstream: Upstream | None = None,
    transport: Transport | None = None,
) -> DeliveryStats:
    """Send what is due, batch by batch, until nothing is due or a connection fails.

    Until `upstream` (the processing stage) has ended, an empty outbox means "wait for more"
    rather than "done", so delivery overlaps processing over one connection. A `transport`
    passed in is the caller's to close (the daemon keeps its connection open between runs);
    otherwise one is opened for this run and closed at its end.
    """
    config = settings.outbound
    stats = DeliveryStats()
    owned = transport is None
    transport = transport or make_transport(settings)
    upstream = upstream or Upstream.none()
    claim = Claim(config.claim_for)
    opened = False
    try:
        while stop is None or not stop.is_set():
            upstream_done = upstream.look()
            due = await claim.take(config.batch_size)
            if not due:
                if upstream_done:
                    break
                await upstream.wait()
                continue
            if not opened:
                try:
                    await transport.open()
                except DeliveryError:
                    await claim.release(due)
                    raise
                opened = True
            if not await _send_batch(transport, due, claim, config, stats, stop):
                break
    finally:
        if opened and owned:
            await transport.close()
    return stats


class _SentLedger:
    """Records accepted messages as sent, in the background, so that sending never waits for
    the database lock. A writer starts once SENT_GROUP rows are waiting (the end of a batch
    records the rest), and takes every row accepted since its last write: under load a larger
    group (never more than SENT_BACKLOG_MAX before sending waits). A crash re-sends only what
    was accepted and not yet recorded; nothing is ever lost."""

    def __init__(self, arrivals: dict[int, datetime], waits: list[float]) -> None:
        self.rows: list[OutboundMessage] = []
        self.writing: asyncio.Task[None] | None = None
        self.arrivals = arrivals  # of the mail the rows answer, for the log lines
        self.waits = waits  # where the acknowledgements' waits are counted

    async def add(self, row: OutboundMessage) -> None:
        self.rows.append(row)
        if self.writing is not None and (self.writing.done() or len(self.rows) >= SENT_BACKLOG_MAX):
            writing, self.writing = self.writing, None
            await writing  # surfaces a failed write; waits when the writer lags too far
        if self.writing is None and len(self.rows) >= SENT_GROUP:
            self.writing = asyncio.create_task(self._drain())

    async def flush(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing
        await self._drain()

    async def _drain(self) -> None:
        while self.rows:
            rows, self.rows = self.rows, []
            sent_at = datetime.now(UTC)
            await OutboundMessage.filter(id__in=[row.id for row in rows]).update(
                state=OutboundState.SENT,
                sent_at=sent_at,
                attempts=F("attempts") + 1,
                **UNCLAIMED,
            )
            for row in rows:
                arrived = self.arrivals.get(row.in_reply_to_id) if row.in_reply_to_id else None
                if arrived is not None and row.kind == TemplateName.ACKNOWLEDGEMENT:
                    self.waits.append(max((sent_at - arrived).total_seconds(), 0.0))
                waited = (
                    f", {short_duration(sent_at - arrived)} after inbound {row.in_reply_to_id}"
                    " arrived"
                    if arrived is not None
                    else ""
                )
                log.info(
                    "outbound %d (%s) sent to %d recipient(s)%s",
                    row.id,
                    row.kind,
                    len(row.recipients),
                    waited,
                )


async def _refused(
    row: OutboundMessage,
    config: OutboundSettings,
    stats: DeliveryStats,
    detail: str,
    *,
    permanent: bool,
) -> None:
    """Record that the server would not take this row (for now, or for good)."""
    final = await _record_failure(row, config, detail, permanent=permanent)
    stats.failed += final
    stats.deferred += not final
    outcome = "failed" if permanent else f"failed after {row.attempts} attempts"
    log.warning(
        "outbound %d (%s) %s: %s", row.id, row.kind, outcome if final else "deferred", detail
    )


async def _send_batch(
    transport: Transport,
    due: list[OutboundMessage],
    claim: Claim,
    config: OutboundSettings,
    stats: DeliveryStats,
    stop: asyncio.Event | None,
) -> bool:
    """Send one claimed batch; False when the connection is failing and the run should stop.
    Whatever was not attempted is given back, for the next run of any daemon.

    A DeliveryError (the server unreachable, or refusing our login or sender address) is about
    the setup, not this row: it propagates, the row keeps its attempts, and the caller's failure
    handling (one log line, backoff) applies, as when the connection could not be opened."""
    ledger = _SentLedger(claim.arrivals, stats.acknowledged_after)
    try:
        for index, row in enumerate(due):
            if stop is not None and stop.is_set():
                return False
            await claim.keep(due[index:])
            if not claim.ours(row):
                continue  # the claim on it was lost: another daemon sends it
            try:
                await transport.send(row)
            except PermanentFailure as exc:
                await _refused(row, config, stats, str(exc), permanent=True)
                continue
            except TemporaryFailure as exc:
                await _refused(row, config, stats, str(exc), permanent=False)
                if isinstance(exc, ConnectionLost):
                    return False
                continue
            except DeliveryError:
                raise
            except Exception as exc:  # one odd row must never stop the whole queue
                detail = f"{type(exc).__name__}: {exc}"
                await _refused(row, config, stats, detail, permanent=False)
                continue
            await ledger.add(row)
            stats.sent += 1
    finally:
        await ledger.flush()
        await claim.release(due)  # touches only rows still queued and claimed by this run
    return True
