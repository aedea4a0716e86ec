"""What the pipelined stages of one cycle share: how a stage waits for the one before it."""

from __future__ import annotations

import asyncio

IDLE_WAIT_SECONDS = 0.05


def upstream_finished(upstream: asyncio.Event | None) -> bool:
    """True when no more work can come: there is no stage before this one, or it has ended.
    Read it before looking for work, so that work committed just before the end is not missed."""
    return upstream is None or upstream.is_set()


async def wait_for_upstream() -> None:
    await asyncio.sleep(IDLE_WAIT_SECONDS)
