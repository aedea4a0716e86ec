"""The migrated schema is the one the models declare, and the lookups of each new report are
read through indexes, so a mailbox with years of cases does not read all of them per report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tortoise import Tortoise, connections

from intake.conduct.handlers import registry
from intake.engine.pipeline import process_pending
from intake.runtime.cycle import running
from intake.settings.schema import Settings
from intake.transport.fetch import fetch_once
from tests.servers import Postgres
from tests.support import base_settings, make_mail, settings_from


def _declared_indexes() -> set[tuple[str, tuple[str, ...]]]:
    """(table, columns) of every index the models ask for."""
    declared = set()
    for model in Tortoise.apps["intake"].values():
        table = model._meta.db_table
        for columns in model._meta.indexes:
            declared.add((table, tuple(columns)))
    return declared


async def _sqlite_indexes() -> set[tuple[str, tuple[str, ...]]]:
    client = connections.get("sqlite")
    _, rows = await client.execute_query(
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'"
    )
    found = set()
    for row in rows:
        _, columns = await client.execute_query(f'PRAGMA index_info("{row["name"]}")')
        found.add((row["tbl_name"], tuple(column["name"] for column in columns)))
    return found


async def test_every_index_the_models_declare_exists_after_the_migrations_on_sqlite(
    db: Settings,
) -> None:
    missing = _declared_indexes() - await _sqlite_indexes()
    assert not missing


async def test_every_index_the_models_declare_exists_after_the_migrations_on_postgresql(
    postgres: Postgres, tmp_path: Path
) -> None:
    data = base_settings(tmp_path)
    data["database"]["url"] = postgres.create_database("schema_indexes")
    async with running(settings_from(tmp_path, data)):
        client = connections.get("postgres")
        _, rows = await client.execute_query(
            "SELECT t.relname AS tbl, array_agg(a.attname ORDER BY k.n) AS columns"
            " FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid"
            " JOIN pg_namespace s ON s.oid = t.relnamespace AND s.nspname = 'public'"
            " CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " GROUP BY x.indexrelid, t.relname"
        )
        found = {(row["tbl"], tuple(row["columns"])) for row in rows}
    assert not _declared_indexes() - found


def _scans_of_large_tables(database: Path, statements: list[str]) -> list[str]:
    """The statements that SQLite would answer by reading a whole table that grows with the
    number of cases or messages."""
    growing = ("ticket", "party", "ticket_event", "inbound_message", "outbound_message")
    with sqlite3.connect(database) as conn:
        found = []
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            for *_, step in conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
                if any(step in (f"SCAN {t}", f"SCAN {t} USING COVERING INDEX") for t in growing):
                    found.append(f"{step}: {sql[:200]}")
    return found


async def test_a_new_report_reads_no_growing_table_whole(db: Settings, tmp_path: Path) -> None:
    inbox = tmp_path / "mail" / "new"
    inbox.mkdir(parents=True, exist_ok=True)
    for n in range(5):
        (inbox / f"{n}.eml").write_bytes(make_mail(sender=f"r{n % 2}@example.net"))
    await fetch_once(db)
    await process_pending(db, registry(db))
    statements: list[str] = []
    client = connections.get("sqlite")
    raw = client._connection._conn  # type: ignore[attr-defined]
    raw.set_trace_callback(statements.append)
    try:
        (inbox / "later.eml").write_bytes(make_mail(sender="r1@example.net"))
        await fetch_once(db)
        await process_pending(db, registry(db))
    finally:
        raw.set_trace_callback(None)
    assert any('INSERT INTO "ticket"' in sql for sql in statements)
    assert not _scans_of_large_tables(tmp_path / "intake.sqlite3", statements)
