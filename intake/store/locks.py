"""Work that must run once at a time when several daemons share one database.

On PostgreSQL a job takes a transaction-level advisory lock, held until its transaction ends, so
a second daemon's run waits and then sees what the first one did. SQLite needs nothing more:
Intake's write transactions start with BEGIN IMMEDIATE (intake/store/sqlite_backend.py), so they
already run one at a time.

Migrations are the exception on both: they run before the process's connections are opened and
span many transactions, so they are serialised by a lock of their own, held on a connection
(PostgreSQL) or a file beside the database (SQLite) for as long as they run. Any number of
daemons and commands may start at once: the first migrates, the others wait and find nothing
left to do.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient

MIGRATIONS = "migrations"


async def hold_job_lock(connection: BaseDBAsyncClient, job: str) -> None:
    """Call first inside the job's transaction; `job` names it (a stable key is derived)."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [_key(job)])


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


@asynccontextmanager
async def migration_lock(url: str) -> AsyncIterator[None]:
    """Held while migrations run; `url` is the database's (tortoise's form)."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite://").split("?", 1)[0]
        if ":memory:" in path:
            yield
            return
        fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the file releases the lock
        return
    _, netloc, path, _, _ = urlsplit(url)
    connection = await asyncpg.connect(urlunsplit(("postgresql", netloc, path, "", "")))
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", _key(MIGRATIONS))
        yield
    finally:
        await connection.close()  # ending the session releases the lock
