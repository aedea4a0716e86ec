"""tortoise's SQLite client, with write transactions that wait their turn.

tortoise opens transactions with a plain (deferred) BEGIN. A deferred transaction that has read
and then wants to write, while another process holds the write lock, gets SQLITE_BUSY at once:
SQLite skips the busy wait there to avoid a deadlock. Every transaction Intake opens is there
to write, so it starts with BEGIN IMMEDIATE, which takes the write lock first and does wait
(five seconds, Python's default) while the daemon, a CLI command or a backup holds it.

Within one process every statement and transaction takes the connection's lock in turn. A long
transaction (a processing chunk of many messages) would keep the other stages' short writes
(the sent ledger, a fetched batch) waiting for its end: the lock counts who waits, so that the
long one can commit early and let them in (`writers_waiting`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Literal

from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import connections, get_connections
from tortoise.exceptions import TransactionManagementError


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateTransactionContext(SqliteTransactionContext):
    """tortoise's context, but one whose BEGIN may fail (busy for too long) without leaving the
    connection lock held and the context variable set: the next transaction must still run."""

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            self.token = get_connections().set(self.connection_name, self.connection)
            try:
                await self.connection.begin()
            except BaseException:
                get_connections().reset(self.token)
                raise
        except BaseException:
            self._trxlock.release()
            raise
        client: TransactionalDBClient = self.connection
        return client


class _CountedLock(asyncio.Lock):
    """The connection's lock, knowing how many tasks wait for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    async def acquire(self) -> Literal[True]:
        self.waiting += 1
        try:
            return await super().acquire()
        finally:
            self.waiting -= 1


class ImmediateSqliteClient(SqliteClient):
    def __init__(self, file_path: str, **kwargs: object) -> None:
        super().__init__(file_path, **kwargs)
        self._lock = _CountedLock()

    def _in_transaction(self) -> TransactionContext:
        return ImmediateTransactionContext(ImmediateTransactionWrapper(self), self._lock)


def writers_waiting() -> bool:
    """Whether other tasks of this process wait for the SQLite connection while the caller's
    transaction holds it (never on PostgreSQL, whose connections are a pool)."""
    for client in connections.all():
        parent = getattr(client, "_parent", client)  # inside a transaction: its connection
        lock = getattr(parent, "_lock", None)
        if isinstance(lock, _CountedLock) and lock.waiting > 0:
            return True
    return False


client_class = ImmediateSqliteClient
