"""A database made by an earlier layout of the code opens, migrates and keeps working.

`tests/data/before-one-house.sqlite3` was made by `intake poll --once` on the shipped settings
and `examples/mail/` with the last release before the package was split into layers (migrations
up to 0006, app label `intake`), with the reply-address secret below. It holds COC-2026-0001
(Sam's report, assigned to Bob) and COC-2026-0002, and the emails that announced them.
"""

from __future__ import annotations

import email
import shutil
import sqlite3
from pathlib import Path

import pytest

from intake.runtime.cycle import poll_once, running
from intake.store.models import InboundMessage, OutboundMessage, Ticket, TicketEvent
from tests.support import REPO, base_settings, make_mail, settings_from

FIXTURE = REPO / "tests" / "data" / "before-one-house.sqlite3"
MIGRATIONS = REPO / "intake" / "store" / "migrations"
SECRET = "legacy-secret-for-the-fixture-database-0123456789"


def applied_migrations(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT app, name FROM tortoise_migrations ORDER BY id")
        return [(str(app), str(name)) for app, name in rows]


def deliver(directory: Path, raw: bytes, name: str) -> None:
    new = directory / "mail" / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / name).write_bytes(raw)


async def test_a_database_of_the_earlier_layout_opens_and_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_SECRET", SECRET)
    database = tmp_path / "intake.sqlite3"
    shutil.copyfile(FIXTURE, database)
    before = applied_migrations(database)
    assert before[-1] == ("intake", "0006_case_handling")
    settings = settings_from(tmp_path, base_settings(tmp_path))

    async with running(settings):
        assert await Ticket.all().order_by("ref").values_list("ref", flat=True) == [
            "COC-2026-0001",
            "COC-2026-0002",
        ]
        notice = await OutboundMessage.get(id=1)
        reply_to = email.message_from_bytes(notice.raw_bytes)["Reply-To"]
        assert "info+" in reply_to

        # Bob answers the reporter through the assignment notice the old code sent: its signed
        # address still works, and #reply sends the rest to the reporter.
        reply_address = reply_to.split("<", 1)[1].rstrip(">")
        deliver(
            tmp_path,
            make_mail(
                sender="Bob Member <bob@example.org>",
                to=reply_address,
                subject="Re: [COC-2026-0001] New case assigned to you",
                body="#reply\nThank you for writing to us; I am looking into it.",
                headers={"In-Reply-To": notice.message_id},
            ),
            "bob-reply.eml",
        )
        # And a new report arrives.
        deliver(tmp_path, make_mail(sender="Kim <kim@example.net>"), "new-report.eml")
        stats = await poll_once(settings)

        assert stats.process.outcomes == {"relayed": 1, "ticket_created": 1}
        relayed_from = await InboundMessage.get(outcome="relayed").prefetch_related("ticket")
        assert relayed_from.ticket is not None and relayed_from.ticket.ref == "COC-2026-0001"
        assert await TicketEvent.filter(
            ticket__ref="COC-2026-0001", body__contains="looking into it"
        ).exists()
        relayed = await OutboundMessage.filter(ticket__ref="COC-2026-0001", id__gt=4)
        assert ["sam@example.net"] in [row.recipients for row in relayed]
        assert await Ticket.filter(ref="COC-2026-0003", reporter_email="kim@example.net").exists()

    # Only the migrations added since then: the restructure itself needed none.
    since = sorted(path.stem for path in MIGRATIONS.glob("0*.py") if path.stem > before[-1][1])
    assert since and applied_migrations(database) == [*before, *(("intake", m) for m in since)]


async def test_cases_closed_before_closing_times_were_kept_get_theirs_from_the_thread(
    tmp_path: Path,
) -> None:
    database = tmp_path / "intake.sqlite3"
    shutil.copyfile(FIXTURE, database)
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE ticket SET status = 'closed'")
        connection.execute(
            "INSERT INTO ticket_event (ticket_id, kind, author, body, internal, created_at)"
            " VALUES (1, 'state', 'bob@example.org', 'status investigating -> closed', 1,"
            " '2026-03-02 10:00:00+00:00')"
        )
        [(updated,)] = connection.execute("SELECT updated_at FROM ticket WHERE id = 2")
    settings = settings_from(tmp_path, base_settings(tmp_path))

    async with running(settings):
        by_thread, without = await Ticket.all().order_by("id")

    assert by_thread.closed_at is not None and by_thread.closed_at.isoformat() == (
        "2026-03-02T10:00:00+00:00"
    )
    assert without.closed_at is not None
    assert without.closed_at.isoformat(sep=" ") == updated
