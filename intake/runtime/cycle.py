"""One fetch, process and deliver cycle, and the process-wide start-up around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from intake.conduct.handlers import registry
from intake.conduct.team import sync_team
from intake.engine.parallel import shutdown_parse_pool
from intake.engine.pipeline import ProcessStats, process_pending
from intake.runtime.courier import end_couriers, outbound_transport
from intake.settings.schema import Settings
from intake.store.db import database
from intake.store.leases import free_leases_of_the_dead
from intake.transport.delivery import DeliveryStats, deliver_once
from intake.transport.fetch import Backfill, FetchStats, fetch_once
from intake.transport.stages import Upstream
from intake.transport.transports import Transport

log = logging.getLogger("intake")
T = TypeVar("T")


@asynccontextmanager
async def running(settings: Settings, *, sync: bool = True) -> AsyncIterator[None]:
    """Database open and migrated for the life of the block; with `sync`, the team mirrored
    from the settings first (the commands that only read leave the database alone)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        async with database(settings.database_url()):
            if sync:
                for holder in await free_leases_of_the_dead():
                    log.info("freed the leases and claims of %s, which is gone", holder)
                await sync_team(settings)
            yield
    finally:
        end_couriers()
        shutdown_parse_pool()


@dataclass
class CycleStats:
    fetch: FetchStats
    process: ProcessStats
    deliver: DeliveryStats


async def _then_end(work: Awaitable[T], stage: Upstream) -> T:
    try:
        return await work
    finally:
        stage.end()


async def _then_close(work: Awaitable[T], transport: Transport) -> T:
    try:
        return await work
    finally:
        await transport.close()


async def poll_once(
    settings: Settings, stop: asyncio.Event | None = None, backfill: Backfill | None = None
) -> CycleStats:
    """Fetch, process and deliver, as a pipeline: each stage starts at once and works on what
    the stage before it has committed, so the first acknowledgement leaves within seconds and
    waiting on the IMAP and SMTP servers overlaps with processing; the SMTP conversation is
    the courier's, on the second core (intake/runtime/courier.py). A failing stage does not
    stop the others (queued mail is still delivered when the mailbox is down); its error is
    raised once all three have finished."""
    fetched, processed = Upstream(), Upstream()
    transport = outbound_transport(settings)
    results = await asyncio.gather(
        _then_end(fetch_once(settings, stop, backfill, on_stored=fetched.more), fetched),
        _then_end(
            process_pending(
                settings, registry(settings), stop, upstream=fetched, on_committed=processed.more
            ),
            processed,
        ),
        _then_close(
            deliver_once(settings, stop, upstream=processed, transport=transport), transport
        ),
        return_exceptions=True,
    )
    errors = [result for result in results if isinstance(result, BaseException)]
    for error in errors[1:]:
        log.error("also failed in this cycle: %s: %s", type(error).__name__, error)
    if errors:
        raise errors[0]
    fetch_stats, process_stats, deliver_stats = results
    assert isinstance(fetch_stats, FetchStats)
    assert isinstance(process_stats, ProcessStats)
    assert isinstance(deliver_stats, DeliveryStats)
    return CycleStats(fetch=fetch_stats, process=process_stats, deliver=deliver_stats)
