"""The migrated schema is the one the models declare, and the lookups of each new report are
read through indexes, so a mailbox with years of cases does not read all of them per report."""

from __future__ import annotations

import re
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

Index = tuple[str, tuple[str, ...]]  # a table and the columns of one of its indexes


def _declared_indexes() -> set[Index]:
    """Every index the models ask for: their indexes, their unique keys (tortoise's table
    rebuild on SQLite loses both) and their indexed or unique columns."""
    declared = set()
    for model in Tortoise.apps["intake"].values():
        meta = model._meta
        for names in (*meta.indexes, *meta.unique_together):
            columns = (
                meta.fields_map[n].source_field or n if n in meta.fields_map else n for n in names
            )
            declared.add((meta.db_table, tuple(columns)))
        for name, field in meta.fields_map.items():
            if (field.index or field.unique) and not field.pk:
                declared.add((meta.db_table, (field.source_field or name,)))
    return declared


def _duplicates(indexes: list[Index]) -> list[Index]:
    return sorted({index for index in indexes if indexes.count(index) > 1})


async def _sqlite_indexes() -> list[Index]:
    client = connections.get("sqlite")
    _, rows = await client.execute_query(
        "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'"
    )
    found = []
    for row in rows:
        _, columns = await client.execute_query(f'PRAGMA index_info("{row["name"]}")')
        found.append((row["tbl_name"], tuple(column["name"] for column in columns)))
    return found


async def test_every_index_the_models_declare_exists_once_after_the_migrations_on_sqlite(
    db: Settings,
) -> None:
    found = await _sqlite_indexes()
    assert not _declared_indexes() - set(found)
    assert not _duplicates(found)


async def test_every_index_the_models_declare_exists_once_after_the_migrations_on_postgresql(
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
        found = [(row["tbl"], tuple(row["columns"])) for row in rows]
    assert not _declared_indexes() - set(found)
    assert not _duplicates(found)


GROWING = ("ticket", "party", "ticket_event", "inbound_message", "outbound_message")
# A step that reads a growing table whole, or a whole range of it bounded on one side only
# ("every party of an earlier case"), as SQLite's query plan words it (older SQLite: SCAN TABLE).
_WHOLE = re.compile(
    rf"^(?:SCAN (?:TABLE )?(?:{'|'.join(GROWING)})\b"
    rf"|SEARCH (?:TABLE )?(?:{'|'.join(GROWING)}) USING .*\(\w+[<>]=?\?\)$)"
)


def _scans_of_large_tables(database: Path, statements: list[str]) -> list[str]:
    """The statements that SQLite would answer by reading all of a table that grows with the
    number of cases or messages, or all of it before or after some row."""
    with sqlite3.connect(database) as conn:
        found = []
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            for *_, step in conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
                if _WHOLE.match(step):
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
