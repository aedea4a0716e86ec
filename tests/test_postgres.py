"""The storage layer on a throwaway PostgreSQL cluster, started by the test."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from intake.conduct.deadlines import run_deadlines
from intake.conduct.digest import run_digests
from intake.conduct.stats import case_stats
from intake.runtime.cycle import poll_once, running
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, OutboundMessage, TeamMember, Ticket, TicketSequence
from intake.store.references import next_reference
from tests.servers import Postgres
from tests.support import base_settings, make_mail, settings_from


@pytest.fixture
def pg_settings(postgres: Postgres, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    data = base_settings(tmp_path)
    data["database"]["url"] = postgres.create_database(f"intake_{request.node.name[5:40]}".lower())
    (tmp_path / "mail" / "new").mkdir(parents=True)
    return settings_from(tmp_path, data)


async def test_migrations_apply_and_a_cycle_runs_on_postgresql(
    pg_settings: Settings, tmp_path: Path
) -> None:
    for n in range(3):
        (tmp_path / "mail" / "new" / f"{n}.eml").write_bytes(make_mail(sender=f"p{n}@example.net"))
    async with running(pg_settings):
        assert connections.get("postgres").capabilities.dialect == "postgres"
        stats = await poll_once(pg_settings)
        assert stats.process.outcomes == {"ticket_created": 3}
        refs = sorted(await Ticket.all().values_list("ref", flat=True))
        year = datetime.now(UTC).year
        assert refs == [f"COC-{year}-0001", f"COC-{year}-0002", f"COC-{year}-0003"]
        assert await OutboundMessage.filter(state="sent").count() == 6
        raw = await InboundMessage.get(source_ref="0.eml").values_list("raw_bytes", flat=True)
        assert bytes(raw) == (tmp_path / "mail" / "cur" / "0.eml:2,S").read_bytes()  # type: ignore[arg-type]
    async with running(pg_settings):  # migrations already applied: a second start is a no-op
        assert await Ticket.all().count() == 3


async def test_unique_keys_refuse_a_second_copy(pg_settings: Settings) -> None:
    async with running(pg_settings):
        fields = {
            "raw_bytes": b"x",
            "size": 1,
            "sha256": "a" * 64,
            "mailbox": "imap://x",
            "folder": "INBOX",
            "uidvalidity": 7,
            "uid": 1,
        }
        await InboundMessage.create(**fields)
        with pytest.raises(IntegrityError):
            await InboundMessage.create(**{**fields, "uid": 2})  # same content
        with pytest.raises(IntegrityError):
            await InboundMessage.create(**{**fields, "sha256": "b" * 64})  # same UID


async def test_concurrent_reference_allocation_never_repeats(pg_settings: Settings) -> None:
    from tortoise.transactions import in_transaction

    async with running(pg_settings):
        now = datetime.now(UTC)

        async def allocate() -> str:
            async with in_transaction():
                return await next_reference("COC", now)

        refs = await asyncio.gather(*(allocate() for _ in range(20)))
        assert len(set(refs)) == 20
        assert (await TicketSequence.get(prefix="COC", year=now.year)).last_number == 20


async def test_a_conversation_threads_and_its_deadlines_run_on_postgresql(
    pg_settings: Settings, tmp_path: Path
) -> None:
    """Threading, parties, commands, deadlines and stats on PostgreSQL, by email alone."""
    inbox, outbox = tmp_path / "mail" / "new", tmp_path / "outbox"

    def sent_to(address: str) -> list[EmailMessage]:
        found = []
        for path in sorted(outbox.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if address in str(message["To"]):
                assert isinstance(message, EmailMessage)
                found.append(message)
        return found

    def answer(to: EmailMessage, sender: str, body: str) -> bytes:
        return make_mail(
            sender=sender,
            to=str(to["Reply-To"]),
            subject=f"Re: {to['Subject']}",
            body=body,
            headers={"In-Reply-To": str(to["Message-ID"])},
        )

    inbox.joinpath("1.eml").write_bytes(make_mail(body="Max insulted me on the forum."))
    async with running(pg_settings):
        await poll_once(pg_settings)
        ticket = await Ticket.get().prefetch_related("assignee")
        assert ticket.assignee is not None
        member = ticket.assignee.email
        [notice] = sent_to(member)
        inbox.joinpath("2.eml").write_bytes(answer(notice, member, "#reply\nWhen did it happen?"))
        await poll_once(pg_settings)
        relayed = [m for m in sent_to("sam@example.net") if "When did it happen?" in str(m)]
        assert len(relayed) == 1
        inbox.joinpath("3.eml").write_bytes(answer(relayed[0], "sam@example.net", "Tuesday."))
        inbox.joinpath("4.eml").write_bytes(answer(notice, member, "#resolve warning rude"))
        stats = await poll_once(pg_settings)
        assert stats.process.outcomes == {"appended": 1, "command": 1}
        assert (await Ticket.get(id=ticket.id)).resolution == "warning"

        fresh = await Ticket.create(
            ref="COC-2026-0999", kind="report", reporter_email="x@example.net", assignee_id=1
        )
        await Ticket.filter(id=fresh.id).update(created_at=datetime.now(UTC) - timedelta(days=4))
        reminders = await run_deadlines(pg_settings, datetime.now(UTC))
        assert any("COC-2026-0999: first_response" in line for line in reminders)
        report = await case_stats(pg_settings, None, None)
        assert report["total"] == {"count": None, "suppressed": True, "reason": "below_min_count"}


async def test_two_overlapping_deadline_runs_send_a_reminder_once(pg_settings: Settings) -> None:
    """On PostgreSQL two runs really overlap (SQLite lets one write at a time): both may see the
    reminder unrecorded; the unique key lets one record it and send it."""
    async with running(pg_settings):
        bob = await TeamMember.get(email="bob@example.org")
        ticket = await Ticket.create(
            ref="COC-2026-0777", kind="report", reporter_email="x@example.net", assignee=bob
        )
        await Ticket.filter(id=ticket.id).update(created_at=datetime.now(UTC) - timedelta(hours=80))
        now = datetime.now(UTC)
        runs = await asyncio.gather(*(run_deadlines(pg_settings, now) for _ in range(4)))
        assert sum(len(lines) for lines in runs) == 1
        assert await OutboundMessage.filter(ticket=ticket, kind="reminder").count() == 1


async def test_overlapping_digest_runs_send_each_digest_once(pg_settings: Settings) -> None:
    """Two daemons' deadlines jobs at the same moment: the digest job's lock lets one send the
    due digests; the other then finds them sent."""
    async with running(pg_settings):
        bob = await TeamMember.get(email="bob@example.org")
        await Ticket.create(
            ref="COC-2026-0778", kind="report", reporter_email="x@example.net", assignee=bob
        )
        now = datetime.now(UTC)
        runs = await asyncio.gather(*(run_digests(pg_settings, now) for _ in range(4)))
        assert sum(len(sent) for sent in runs) == 2  # Bob, who holds it, and Alice, the lead
        recipients = await OutboundMessage.filter(kind="digest").values_list(
            "recipients", flat=True
        )
        assert sorted(address for listed in recipients for address in listed) == [
            "alice@example.org",
            "bob@example.org",
        ]
