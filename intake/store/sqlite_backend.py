"""tortoise's SQLite client, with write transactions that wait their turn.

tortoise opens transactions with a plain (deferred) BEGIN. A deferred transaction that has read
and then wants to write, while another process holds the write lock, gets SQLITE_BUSY at once:
SQLite skips the busy wait there to avoid a deadlock. Every transaction Intake opens is there
to write, so it starts with BEGIN IMMEDIATE, which takes the write lock first and does wait
(five seconds, Python's default) while the daemon, a CLI command or a backup holds it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import get_connections
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


class ImmediateSqliteClient(SqliteClient):
    """Also with `secure_delete`: a purge or an erasure must not leave the bytes it removed in
    the file's free space (intake/store/compaction.py)."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        kwargs.setdefault("secure_delete", "ON")
        super().__init__(file_path, **kwargs)

    def _in_transaction(self) -> TransactionContext:
        return ImmediateTransactionContext(ImmediateTransactionWrapper(self), self._lock)


client_class = ImmediateSqliteClient
