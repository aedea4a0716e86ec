"""Jobs that must run once at a time when several daemons share one database.

On PostgreSQL a job takes a transaction-level advisory lock, held until its transaction ends, so
a second daemon's run waits and then sees what the first one did. SQLite needs nothing more:
Intake's write transactions start with BEGIN IMMEDIATE (intake/store/sqlite_backend.py), so they
already run one at a time.
"""

from __future__ import annotations

import zlib

from tortoise.backends.base.client import BaseDBAsyncClient


async def hold_job_lock(connection: BaseDBAsyncClient, job: str) -> None:
    """Call first inside the job's transaction; `job` names it (a stable key is derived)."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query(
            "SELECT pg_advisory_xact_lock($1)", [zlib.crc32(job.encode())]
        )
