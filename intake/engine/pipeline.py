"""Claim a stored message, decide what it is, run its handler and stamp the outcome, in one
transaction.

The stages, in order: parse; `screen` (pure rules for machine mail); only for mail that may come
from a person, `link_case` (which case it is for) and the case rules; then the handler for the
verdict. The rules and handlers come from the `Registry` the runtime passes in.

A message whose processing raises is rolled back, retried with backoff a few times, and then
parked as failed with its error; `intake inbound retry` puts it back. Nothing disappears.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from intake.engine.contract import Handler, HandlerContext, HandlerResult, Registry, Verdict
from intake.engine.link import CaseLink, link_case
from intake.engine.machine_mail import MACHINE_HANDLERS
from intake.engine.parallel import PendingParse, start_parsing
from intake.engine.screen import MachineMail, screen
from intake.engine.verp import addressed_to_bounce_address
from intake.mail.parse import ParsedMessage, parse_headers_only
from intake.mail.sanitize import human_size, short_duration
from intake.settings.retry import backoff
from intake.settings.schema import Settings
from intake.store.lag import arrival
from intake.store.models import InboundMessage, InboundState, Outcome
from intake.store.sqlite_backend import writers_waiting
from intake.transport.stages import Upstream

log = logging.getLogger("intake.pipeline")

YIELD_AFTER = 0.05  # seconds a chunk's transaction holds the connection before it lets others in


@dataclass
class ProcessStats:
    processed: int = 0
    failed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Run:
    """What every message of one run shares."""

    settings: Settings
    registry: Registry
    own_addresses: frozenset[str]
    stop: asyncio.Event | None


BOUNCE_ADDRESS = Verdict(MachineMail.BOUNCE, "sent to our bounce (VERP) address", "bounce_address")


async def _decide(
    run: _Run, message: ParsedMessage, raw: bytes
) -> tuple[Verdict, CaseLink | None, Handler]:
    """Screen first: machine mail has the engine's handlers, and costs no case lookup. Only mail
    that may come from a person is linked to its case and decided by the case rules. Mail to
    our bounce address is a machine's whatever it looks like: nobody else writes there."""
    verdict = screen(message, run.own_addresses)
    if verdict is None and addressed_to_bounce_address(raw, run.settings):
        verdict = BOUNCE_ADDRESS
    if verdict is not None:
        return verdict, None, MACHINE_HANDLERS[verdict.kind]
    link = await link_case(run.settings, message)
    verdict = run.registry.rules(message, link)
    return verdict, link, run.registry.handlers[verdict.kind]


async def _due(limit: int) -> dict[int, bytes]:
    """The raw bytes of the next due messages, by id, oldest first, in one query."""
    now = datetime.now(UTC)
    rows = (
        await InboundMessage.filter(state=InboundState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .limit(limit)
        .values_list("id", "raw_bytes")
    )
    return dict(cast(list[tuple[int, bytes]], rows))


# Everything a handler may read of the row; its raw bytes are already in hand (from _due).
_CLAIMED_FIELDS = (
    *("id", "attempts", "message_id", "mailbox", "folder", "sha256", "size", "quiet"),
    *("arrived_at", "received_at"),
)


def _start_parsing(due: dict[int, bytes], settings: Settings) -> dict[int, PendingParse]:
    """Start parsing the whole batch (in a worker, if enabled); a message over the size limit
    is read for its headers only."""
    limit_bytes = settings.limits.max_message_bytes
    readable = [inbound_id for inbound_id, raw in due.items() if len(raw) <= limit_bytes]
    pending = start_parsing(
        [due[inbound_id] for inbound_id in readable],
        settings.processing.parse_workers,
        settings.limits.parse_seconds,
    )
    parsing = dict(zip(readable, pending, strict=True))
    for inbound_id, raw in due.items():
        if inbound_id not in parsing:
            note = _too_large_note(inbound_id, len(raw), limit_bytes)
            parsing[inbound_id] = PendingParse.ready(parse_headers_only(raw, note))
    return parsing


def _too_large_note(inbound_id: int, size: int, limit: int) -> str:
    return (
        f"(This message is {human_size(size)}, over the limit of {human_size(limit)}: its text"
        f" and attachments were not read. The original is stored unchanged; see"
        f" `intake inbound show {inbound_id}`.)"
    )


async def _process_one(
    run: _Run, inbound: InboundMessage, raw: bytes, parsing: PendingParse, now: datetime
) -> tuple[str, str]:
    """Process one claimed message in a savepoint; returns (outcome, log line). A failure rolls
    back this message's writes only, and reschedules or parks it."""
    inbound_id = inbound.id
    try:
        async with in_transaction():
            message = await parsing.result()
            verdict, link, handler = await _decide(run, message, raw)
            result: HandlerResult = await handler(
                HandlerContext(
                    settings=run.settings,
                    inbound=inbound,
                    raw=raw,
                    message=message,
                    verdict=verdict,
                    now=now,
                    link=link,
                )
            )
            await InboundMessage.filter(id=inbound_id).update(
                state=InboundState.DONE,
                outcome=result.outcome,
                reason=result.reason,
                ticket_id=result.ticket.id if result.ticket else None,
                processed_at=now,
                attempts=inbound.attempts + 1,
            )
    except Exception as exc:  # any failure parks or reschedules the message, never loses it
        return await _record_failure(run.settings, inbound, exc)
    ref = f" {result.ticket.ref}" if result.ticket else ""
    waited = short_duration(now - arrival(inbound.arrived_at, inbound.received_at))
    line = (
        f"inbound {inbound_id} {message.message_id or '(no Message-ID)'} -> "
        f"{result.outcome}{ref} ({result.reason}); {waited} after arrival"
    )
    return str(result.outcome), line


async def _process_chunk(
    run: _Run, due: dict[int, bytes], ids: list[int], parsing: dict[int, PendingParse]
) -> tuple[list[str], list[int]]:
    """Several messages in one transaction, each in its own savepoint: one commit for many.
    Returns the outcomes, and the ids left for the next transaction.

    The rows are claimed (FOR UPDATE SKIP LOCKED on PostgreSQL) by the outer transaction, so a
    savepoint rolled back after a failure keeps the claim and no other worker can take the
    message before its failure is recorded. Outcomes are logged only once they are committed.
    On SQLite, the transaction commits early, once it has held the connection for YIELD_AFTER,
    when another stage waits to write (the sent ledger, a fetched batch): holding it for the
    whole chunk would leave delivery sending a few emails per chunk, and the fetch waiting,
    while processing runs.
    """
    done: list[tuple[str, str]] = []
    left: list[int] = []
    began = time.monotonic()
    async with in_transaction():
        claimed = await (
            InboundMessage.select_for_update(skip_locked=True)
            .filter(id__in=ids, state=InboundState.PENDING)
            .only(*_CLAIMED_FIELDS)
            .order_by("id")
        )
        for inbound in claimed:
            if run.stop is not None and run.stop.is_set():
                break
            if time.monotonic() - began >= YIELD_AFTER and writers_waiting():
                left = [inbound_id for inbound_id in ids if inbound_id >= inbound.id]
                break
            now = datetime.now(UTC)
            raw = due[inbound.id]
            done.append(await _process_one(run, inbound, raw, parsing[inbound.id], now))
    for outcome, line in done:
        if outcome == Outcome.FAILED:
            log.warning("%s", line)
        else:
            log.info("%s", line)
    return [outcome for outcome, _ in done], left


async def _record_failure(
    settings: Settings, inbound: InboundMessage, exc: Exception
) -> tuple[str, str]:
    """Reschedule with exponential backoff, or park after max_attempts; returns the log line.
    The claimed row already knows its attempts, so its raw bytes are not read again."""
    attempts = inbound.attempts + 1
    error = f"{type(exc).__name__}: {exc}"[:2000]
    update = InboundMessage.filter(id=inbound.id)
    if attempts >= settings.processing.max_attempts:
        await update.update(
            attempts=attempts,
            last_error=error,
            state=InboundState.FAILED,
            outcome=Outcome.FAILED,
            reason=f"failed {attempts} times; parked",
            next_attempt_at=None,
        )
        line = f"inbound {inbound.id} parked after {attempts} attempts"
    else:
        delay = backoff(settings.processing.retry_after, attempts)
        await update.update(
            attempts=attempts, last_error=error, next_attempt_at=datetime.now(UTC) + delay
        )
        line = f"inbound {inbound.id} failed (attempt {attempts}), retrying in {delay}"
    return Outcome.FAILED, f"{line}: {error}"


async def process_pending(
    settings: Settings,
    registry: Registry,
    stop: asyncio.Event | None = None,
    upstream: Upstream | None = None,
    on_committed: Callable[[], None] | None = None,
) -> ProcessStats:
    """Process every due message, batch by batch; between messages, honour `stop`. After each
    commit, tell `on_committed` (the delivery stage), so an acknowledgement leaves at once.

    Until `upstream` (the fetch stage) has ended, no due message means "wait for more".
    """
    stats = ProcessStats()
    run = _Run(settings, registry, frozenset({settings.organisation.address}), stop)
    per_commit = settings.processing.messages_per_commit
    upstream = upstream or Upstream.none()
    while stop is None or not stop.is_set():
        upstream_done = upstream.look()
        due = await _due(settings.processing.batch_size)
        if not due:
            if upstream_done:
                break
            await upstream.wait()
            continue
        ids = list(due)
        parsing = _start_parsing(due, settings)
        while ids and (stop is None or not stop.is_set()):
            chunk, ids = ids[:per_commit], ids[per_commit:]
            outcomes, left = await _process_chunk(run, due, chunk, parsing)
            ids = left + ids
            for outcome in outcomes:
                stats.processed += 1
                stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
                stats.failed += outcome == Outcome.FAILED
            if on_committed is not None:
                on_committed()
    return stats
