"""tortoise's SQLite client, with write transactions that wait their turn.

tortoise opens transactions with a plain (deferred) BEGIN. A deferred transaction that has read
and then wants to write, while another process holds the write lock, gets SQLITE_BUSY at once:
SQLite skips the busy wait there to avoid a deadlock. Every transaction Intake opens is there
to write, so it starts with BEGIN IMMEDIATE, which takes the write lock first and does wait
(five seconds, Python's default) while the daemon, a CLI command or a backup holds it.

Inside a transaction, the statements run on the event loop's thread instead of aiosqlite's: the
write lock is ours from BEGIN IMMEDIATE on, and readers never block in WAL mode, so none of them
can wait, and each takes microseconds where the hop to aiosqlite's thread and back costs tens
of them (more on a busy machine, where the woken thread waits for a core and for the GIL). A
report is about twenty statements. BEGIN (which may wait for the lock), COMMIT (an fsync),
UPDATEs and statements with large values (see _Inline) still go through aiosqlite's thread, as
does every statement outside a transaction.

Within one process every statement and transaction takes the connection's lock in turn. A long
transaction (a processing chunk of many messages) would keep the other stages' short writes
(the sent ledger, a fetched batch) waiting for its end: the lock counts who waits, so that the
long one can commit early and let them in (`writers_waiting`).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from typing import Any, Literal

import aiosqlite
from tortoise.backends.base.client import (
    NestedTransactionContext,
    TransactionalDBClient,
    TransactionContext,
)
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.connection import connections, get_connections
from tortoise.exceptions import TransactionManagementError

INLINE_MAX = 1 << 20  # bytes: a statement with a larger value goes through aiosqlite's thread


class _Inline:
    """The part of aiosqlite's Connection that tortoise's clients use for statements, run at
    once on the calling thread. An UPDATE, or a statement that carries a value over INLINE_MAX
    (a large report), still goes through aiosqlite's thread: SQLite rewrites an updated row
    whole, stored email included, and the memory it took for that on the event loop's thread
    stayed in that thread's heap (a 25 MB report peaked at 309 MB instead of 259 MB)."""

    def __init__(self, threaded: aiosqlite.Connection) -> None:
        self.threaded = threaded
        self.connection = threaded._conn

    @property
    def total_changes(self) -> int:
        return self.connection.total_changes

    async def execute_insert(self, sql: str, parameters: Any) -> Any:
        if _large(parameters):
            return await self.threaded.execute_insert(sql, parameters)
        return (self.connection.execute(sql, parameters).lastrowid,)

    async def execute_fetchall(self, sql: str, parameters: Any) -> Any:
        if _large(parameters) or sql.startswith("UPDATE"):
            return await self.threaded.execute_fetchall(sql, parameters)
        return self.connection.execute(sql, parameters or ()).fetchall()

    async def executemany(self, sql: str, parameters: Any) -> None:
        if any(_large(row) for row in parameters):
            await self.threaded.executemany(sql, parameters)
        else:
            self.connection.executemany(sql, parameters)

    async def executescript(self, sql: str) -> None:
        await self.threaded.executescript(sql)


def _large(parameters: Any) -> bool:
    return any(
        isinstance(value, bytes | str) and len(value) > INLINE_MAX for value in parameters or ()
    )


class _InlineAccess:
    """What `acquire_connection` returns inside a transaction: no lock, since a statement run
    inline cannot interleave with another."""

    def __init__(self, inline: _Inline) -> None:
        self.inline = inline

    async def __aenter__(self) -> _Inline:
        return self.inline

    async def __aexit__(self, *_: object) -> None:
        return None


class ImmediateTransactionWrapper(SqliteTransactionWrapper):
    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc

    def acquire_connection(self) -> Any:
        return _InlineAccess(_Inline(self._connection))

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(ImmediateTransactionWrapper(self))

    async def savepoint(self) -> None:
        self._savepoint = f"intake_savepoint_{next(_savepoints)}"
        self._connection._conn.execute(f"SAVEPOINT {self._savepoint}")

    async def savepoint_rollback(self) -> None:
        if self._finalized or self._savepoint is None:
            raise TransactionManagementError("no savepoint to roll back to")
        self._connection._conn.execute(f"ROLLBACK TO {self._savepoint}")
        self._savepoint = None

    async def release_savepoint(self) -> None:
        if self._finalized or self._savepoint is None:
            raise TransactionManagementError("no savepoint to release")
        self._connection._conn.execute(f"RELEASE {self._savepoint}")


_savepoints = itertools.count()


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
    """Also with `secure_delete`: a purge or an erasure must not leave the bytes it removed in
    the file's free space (intake/store/compaction.py)."""

    def __init__(self, file_path: str, **kwargs: Any) -> None:
        kwargs.setdefault("secure_delete", "ON")
        super().__init__(file_path, **kwargs)
        self._lock = _CountedLock()

    async def create_connection(self, with_db: bool) -> None:
        """tortoise's, but with a connection the event loop's thread may use too (inside a
        transaction, while aiosqlite's thread has nothing to do)."""
        if self._connection:
            return
        self._connection = await aiosqlite.connect(
            self.filename, isolation_level=None, check_same_thread=False
        )
        self._connection._conn.row_factory = sqlite3.Row
        for pragma, value in self.pragmas.items():
            cursor = await self._connection.execute(f"PRAGMA {pragma}={value}")
            await cursor.close()
        await self._post_connect()

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
