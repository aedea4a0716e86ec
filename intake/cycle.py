"""One fetch, process and deliver cycle, and the process-wide start-up around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from intake.config import Settings
from intake.db import database
from intake.fetch import FetchStats, fetch_once
from intake.outbox.deliver import DeliveryStats, deliver_once
from intake.pipeline import ProcessStats, process_pending
from intake.team import sync_team

log = logging.getLogger("intake")


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[None]:
    """Database open, migrated and the team synced, for the life of the block."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with database(settings.database.url):
        await sync_team(settings)
        yield


@dataclass
class CycleStats:
    fetch: FetchStats
    process: ProcessStats
    deliver: DeliveryStats


async def poll_once(settings: Settings, stop: asyncio.Event | None = None) -> CycleStats:
    fetched = await fetch_once(settings)
    processed = await process_pending(settings, stop)
    delivered = await deliver_once(settings, stop)
    return CycleStats(fetch=fetched, process=processed, deliver=delivered)
