"""Claim a stored message, classify it, run its handler and stamp the outcome, in one transaction.

A message whose processing raises is rolled back, retried with backoff a few times, and then
parked as failed with its error; `intake inbound retry` puts it back. Nothing disappears.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from handlers import HANDLERS
from handlers.base import HandlerContext
from intake.classify import ClassifyContext, classify
from intake.config import Settings, parse_duration
from intake.models import InboundMessage, InboundState, Outcome
from intake.outbox.deliver import IDLE_WAIT_SECONDS
from intake.parse import parse_message

log = logging.getLogger("intake.pipeline")


@dataclass
class ProcessStats:
    processed: int = 0
    failed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def classify_context(settings: Settings) -> ClassifyContext:
    return ClassifyContext(own_addresses=frozenset({settings.organisation.address}))


async def _due_ids(limit: int) -> list[int]:
    now = datetime.now(UTC)
    ids = (
        await InboundMessage.filter(state=InboundState.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    return cast(list[int], ids)


async def process_one(settings: Settings, inbound_id: int, context: ClassifyContext) -> str | None:
    """Process one stored message; returns its outcome, or None when another worker has it."""
    now = datetime.now(UTC)
    try:
        async with in_transaction():
            inbound = (
                await InboundMessage.select_for_update(skip_locked=True)
                .filter(id=inbound_id, state=InboundState.PENDING)
                .first()
            )
            if inbound is None:
                return None
            message = parse_message(inbound.raw_bytes)
            verdict = classify(message, context)
            handler = HANDLERS[verdict.kind]
            result = await handler(
                HandlerContext(
                    settings=settings, inbound=inbound, message=message, verdict=verdict, now=now
                )
            )
            inbound.state = InboundState.DONE
            inbound.outcome = result.outcome
            inbound.reason = result.reason
            inbound.ticket = result.ticket
            inbound.processed_at = now
            inbound.attempts += 1
            await inbound.save(
                update_fields=[
                    "state",
                    "outcome",
                    "reason",
                    "ticket_id",
                    "processed_at",
                    "attempts",
                ]
            )
    except Exception as exc:  # any failure parks or reschedules the message, never loses it
        return await _record_failure(settings, inbound_id, exc)
    ref = f" {result.ticket.ref}" if result.ticket else ""
    log.info(
        "inbound %d %s -> %s%s (%s)",
        inbound_id,
        message.message_id or "(no Message-ID)",
        result.outcome,
        ref,
        result.reason,
    )
    return str(result.outcome)


async def _record_failure(settings: Settings, inbound_id: int, exc: Exception) -> str:
    inbound = await InboundMessage.get(id=inbound_id)
    inbound.attempts += 1
    inbound.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if inbound.attempts >= settings.processing.max_attempts:
        inbound.state = InboundState.FAILED
        inbound.outcome = Outcome.FAILED
        inbound.reason = f"failed {inbound.attempts} times; parked"
        inbound.next_attempt_at = None
        log.error(
            "inbound %d parked after %d attempts: %s",
            inbound_id,
            inbound.attempts,
            inbound.last_error,
        )
    else:
        delay = parse_duration(settings.processing.retry_after) * 2 ** (inbound.attempts - 1)
        inbound.next_attempt_at = datetime.now(UTC) + delay
        log.warning(
            "inbound %d failed (attempt %d), retrying in %s: %s",
            inbound_id,
            inbound.attempts,
            delay,
            inbound.last_error,
        )
    await inbound.save(
        update_fields=["attempts", "last_error", "state", "outcome", "reason", "next_attempt_at"]
    )
    return Outcome.FAILED


async def process_pending(
    settings: Settings,
    stop: asyncio.Event | None = None,
    upstream: asyncio.Event | None = None,
) -> ProcessStats:
    """Process every due message, batch by batch; between messages, honour `stop`.

    While `upstream` (the fetch stage) is not yet set, no due message means "wait for more".
    """
    stats = ProcessStats()
    context = classify_context(settings)
    while stop is None or not stop.is_set():
        upstream_done = upstream is None or upstream.is_set()
        ids = await _due_ids(settings.processing.batch_size)
        if not ids:
            if upstream_done:
                break
            await asyncio.sleep(IDLE_WAIT_SECONDS)
            continue
        for inbound_id in ids:
            if stop is not None and stop.is_set():
                break
            outcome = await process_one(settings, inbound_id, context)
            if outcome is None:
                continue
            stats.processed += 1
            stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
            if outcome == Outcome.FAILED:
                stats.failed += 1
    return stats
