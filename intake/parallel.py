"""Parsing on the second core: a worker process parses the next messages of a batch while the
event loop's thread handles the current one (parsing is a quarter of the per-message work).

The pool starts lazily, on the first batch big enough to gain from it, with the forkserver
method (forking a process that runs threads, as aiosqlite does, is unsafe), and is shut down
when the database closes. A broken pool (a worker killed by hostile input) falls back to
parsing each affected message alone in a fresh worker: the one that killed the worker fails
there (it is retried, then parked) instead of taking the daemon down with it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from intake.parse import ParsedMessage, parse_message

MIN_BATCH_FOR_POOL = 4

_pool: ProcessPoolExecutor | None = None


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("forkserver")
        )
    return _pool


def shutdown_parse_pool() -> None:
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


class PendingParse:
    """A parse that has started in a worker, or that will run here when asked for."""

    def __init__(
        self,
        raw: bytes,
        future: Future[ParsedMessage] | None,
        parsed: ParsedMessage | None = None,
    ) -> None:
        self.raw = raw
        self.future = future
        self.parsed = parsed

    @classmethod
    def ready(cls, parsed: ParsedMessage) -> PendingParse:
        return cls(b"", None, parsed)

    async def result(self) -> ParsedMessage:
        if self.parsed is not None:
            return self.parsed
        if self.future is None:
            return parse_message(self.raw)
        try:
            return await asyncio.wrap_future(self.future)
        except BrokenProcessPool:
            shutdown_parse_pool()
            return await _parse_alone(self.raw)


class ParseCrashed(Exception):
    """Parsing this message killed the process doing it."""


async def _parse_alone(raw: bytes) -> ParsedMessage:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        try:
            return await asyncio.wrap_future(pool.submit(parse_message, raw))
        except BrokenProcessPool:
            raise ParseCrashed("parsing this message killed its worker process") from None


def start_parsing(raws: list[bytes], workers: int) -> list[PendingParse]:
    """Submit every message of a batch at once; small batches are parsed here, when awaited."""
    if workers < 1 or len(raws) < MIN_BATCH_FOR_POOL:
        return [PendingParse(raw, None) for raw in raws]
    pool = _get_pool(workers)
    try:
        return [PendingParse(raw, pool.submit(parse_message, raw)) for raw in raws]
    except BrokenProcessPool:
        shutdown_parse_pool()
        return [PendingParse(raw, None) for raw in raws]
