"""Removed content must leave the database's files, not only its rows.

SQLite: every connection runs with `secure_delete` on (intake/store/sqlite_backend.py), so the
bytes of a deleted or overwritten value are zeroed in the file as it goes; what remains is the
page images in the write-ahead log, which a truncating checkpoint empties (while another
process reads, it cannot: the log is then emptied by a later checkpoint).
PostgreSQL: VACUUM prunes the dead row versions so their space is reused; the bytes leave its
files as pages are rewritten (VACUUM FULL, run by an operator, rewrites them at once).
"""

from __future__ import annotations

from intake.store.models import Ticket

TABLES = ("inbound_message", "outbound_message", "ticket_event", "party", "ticket", "audit_event")


async def compact() -> None:
    """Call outside any transaction, after content was removed."""
    db = Ticket._meta.db
    if db.capabilities.dialect == "sqlite":
        await db.execute_script("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    for table in TABLES:
        await db.execute_script(f"VACUUM {table}")
