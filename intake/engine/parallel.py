"""Parsing on the second core: a worker process parses the next messages of a batch while the
event loop's thread handles the current one (parsing is a quarter of the per-message work).

The pool starts lazily, on the first batch big enough to gain from it, and is shut down when
the database closes. Its workers are spawned (forking a process that runs threads, as aiosqlite
does, is unsafe) straight from the daemon, not through a fork server, so that each can ask the
kernel to kill it when the daemon dies (PR_SET_PDEATHSIG): however the daemon ends, SIGKILL
included, no worker is left behind. A broken pool (a worker killed by hostile input) falls back to
parsing each affected message alone in a fresh worker: the one that killed the worker fails
there (it is retried, then parked) instead of taking the daemon down with it.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from intake.mail.parse import ParsedMessage, parse_message

MIN_BATCH_FOR_POOL = 4
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>

_pool: ProcessPoolExecutor | None = None


def die_with(parent: int) -> None:
    """The first thing each worker does (the parse workers, the courier): ask the kernel to send
    it SIGKILL when its parent, the daemon, dies. (The signal follows the thread that started
    the worker: the event loop's, which lives as long as the daemon.) Where prctl does not
    exist (not Linux), the executor's own check of its parent is all there is."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the daemon died before the kernel was told
        os._exit(0)


def _new_pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with,
        initargs=(os.getpid(),),
    )


def _get_pool(workers: int) -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = _new_pool(workers)
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
        budget: float | None = None,
    ) -> None:
        self.raw = raw
        self.future = future
        self.parsed = parsed
        self.budget = budget

    @classmethod
    def ready(cls, parsed: ParsedMessage) -> PendingParse:
        return cls(b"", None, parsed)

    async def result(self) -> ParsedMessage:
        if self.parsed is not None:
            return self.parsed
        if self.future is None:
            return parse_message(self.raw)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.future), self.budget)
        except TimeoutError:
            _kill_workers(_pool)
            shutdown_parse_pool()
            raise ParseCrashed(f"parsing took more than {self.budget:g} s; stopped") from None
        except BrokenProcessPool:
            shutdown_parse_pool()
            return await _parse_alone(self.raw, self.budget)
        except asyncio.CancelledError:
            if not self.future.cancelled():
                raise  # this task itself is being cancelled
            # The pool was shut down under it (a worker was stopped): parse it alone.
            return await _parse_alone(self.raw, self.budget)


class ParseCrashed(Exception):
    """Parsing this message killed the process doing it, or ran over its time budget."""


def _kill_workers(pool: ProcessPoolExecutor | None) -> None:
    """Stop a worker stuck on one message. The executor has no public way to do this before
    Python 3.14 (terminate_workers), so this reaches for its process table."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.kill()


async def _parse_alone(raw: bytes, budget: float | None) -> ParsedMessage:
    pool = _new_pool(1)
    try:
        return await asyncio.wait_for(asyncio.wrap_future(pool.submit(parse_message, raw)), budget)
    except TimeoutError:
        _kill_workers(pool)
        raise ParseCrashed(f"parsing took more than {budget:g} s; stopped") from None
    except BrokenProcessPool:
        raise ParseCrashed("parsing this message killed its worker process") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def start_parsing(
    raws: list[bytes], workers: int, budget: float | None = None
) -> list[PendingParse]:
    """Submit every message of a batch at once; small batches are parsed here, when awaited.
    In a worker, each message has `budget` seconds (counted from when it is awaited, by which
    time the messages before it are done); parsing here has no budget."""
    if workers < 1 or len(raws) < MIN_BATCH_FOR_POOL:
        return [PendingParse(raw, None) for raw in raws]
    pool = _get_pool(workers)
    try:
        return [PendingParse(raw, pool.submit(parse_message, raw), None, budget) for raw in raws]
    except BrokenProcessPool:
        shutdown_parse_pool()
        return [PendingParse(raw, None) for raw in raws]
