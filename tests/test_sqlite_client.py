"""Our SQLite client: statements inside a transaction on the event loop's thread, savepoints,
and a transaction that can tell another task waits for the connection."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from intake.settings.schema import Settings
from intake.store.models import JobLease
from intake.store.sqlite_backend import writers_waiting

NEVER = "1970-01-01T00:00:00+00:00"


async def test_a_transaction_sees_another_task_waiting_for_the_connection(db: Settings) -> None:
    go = asyncio.Event()

    async def other_stage() -> int:
        await go.wait()
        return await JobLease.all().count()

    waiting = asyncio.create_task(other_stage())  # outside the transaction, like the ledger
    async with in_transaction():
        await JobLease.create(name="held", holder="", until=NEVER)
        assert not writers_waiting()
        go.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert writers_waiting()
    assert await waiting == 1  # it ran once the transaction had committed
    assert not writers_waiting()


async def test_a_savepoint_rolls_back_alone_inside_a_transaction(db: Settings) -> None:
    async with in_transaction():
        await JobLease.create(name="kept", holder="", until=NEVER)
        with pytest.raises(RuntimeError):
            async with in_transaction():
                await JobLease.create(name="rolled back", holder="", until=NEVER)
                raise RuntimeError("this message fails")
        await JobLease.filter(name="kept").update(holder="us")  # an UPDATE takes the thread
    assert await JobLease.all().values_list("name", "holder") == [("kept", "us")]


async def test_a_failed_transaction_leaves_nothing(db: Settings) -> None:
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await JobLease.create(name="gone", holder="", until=NEVER)
            assert await JobLease.filter(name="gone").exists()
            raise RuntimeError("rolled back")
    assert not await JobLease.filter(name="gone").exists()
