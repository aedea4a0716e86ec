"""Parsing in a worker process: the same results as in-process, and a dead worker loses nothing."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from intake.engine import parallel
from intake.mail.parse import parse_message
from tests.support import make_mail


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    parallel.shutdown_parse_pool()
    yield
    parallel.shutdown_parse_pool()


async def test_a_worker_parses_exactly_as_this_process_does() -> None:
    raws = [make_mail(body=f"Report {n}: caf\u00e9") for n in range(6)]
    pending = parallel.start_parsing(raws, workers=1)
    assert all(item.future is not None for item in pending)
    assert [await item.result() for item in pending] == [parse_message(raw) for raw in raws]


async def test_small_batches_are_parsed_here() -> None:
    pending = parallel.start_parsing([make_mail()], workers=1)
    assert pending[0].future is None
    assert parallel._pool is None


async def test_a_killed_worker_loses_no_message() -> None:
    raws = [make_mail(body=f"Report {n}") for n in range(6)]
    pending = parallel.start_parsing(raws, workers=1)
    pool = parallel._pool
    assert pool is not None
    deadline = time.monotonic() + 30
    while not pool._processes:  # the worker is being started by the forkserver
        assert time.monotonic() < deadline
        time.sleep(0.01)
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    results = [await item.result() for item in pending]
    assert [result.text for result in results] == [f"Report {n}" for n in range(6)]
    assert parallel._pool is None  # the broken pool was dropped; the next batch gets a new one
