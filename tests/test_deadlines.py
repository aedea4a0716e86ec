"""Reminders when a case's deadlines fall due. The clock is the `now` each run is given."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intake.conduct import deadlines
from intake.conduct.commands import Command, CommandContext, run_command
from intake.conduct.deadlines import run_deadlines
from intake.conduct.parties import add_party, exclude_member, reporter_party, team_party
from intake.runtime.cycle import running
from intake.runtime.daemon import Daemon
from intake.settings.schema import Settings
from intake.store.models import (
    InboundMessage,
    OutboundMessage,
    PartyRole,
    Reminder,
    TeamMember,
    Ticket,
    TicketStatus,
)
from tests.support import base_settings, intake, settings_from

# A Tuesday in the roster's second week: Bob is on duty, Carol is his backup, all that week.
T0 = datetime(2026, 1, 13, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SECRET = "Mallory"  # in the report's subject: never in a reminder
_refs = itertools.count(1)


@pytest.fixture
def base_config(base_config: dict[str, Any]) -> dict[str, Any]:
    """The usual team (Alice leads, Bob), plus Carol and a second lead, Dan; Carol is on the
    rota after Bob, so she is his backup."""
    base_config["team"] += [
        {"name": "Carol Member", "email": "carol@example.org", "roles": ["member"]},
        {"name": "Dan Lead", "email": "dan@example.org", "roles": ["lead"]},
    ]
    base_config["roster"]["rotation"] = [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    ]
    return base_config


async def member(email: str) -> TeamMember:
    return await TeamMember.get(email=email)


async def case(
    *,
    assignee: str | None = "bob@example.org",
    urgent: bool = False,
    reporter: bool = True,
    **fields: Any,
) -> Ticket:
    """A case opened at T0, held by Bob unless said otherwise, with the reporter as a party."""
    ticket = await Ticket.create(
        ref=f"COC-2026-{next(_refs):04d}",
        kind="report",
        subject=f"Harassment by {SECRET}",
        reporter_email="sam@example.net",
        assignee=await member(assignee) if assignee else None,
        urgent=urgent,
        created_at=T0,
        **fields,
    )
    if reporter:
        await add_party(ticket, PartyRole.REPORTER, "sam@example.net", "Sam Reporter")
    return ticket


async def reminders(ticket: Ticket) -> list[tuple[str, list[str]]]:
    """(headline, recipients) of each reminder queued for the case, oldest first."""
    rows = await OutboundMessage.filter(ticket=ticket, kind="reminder").order_by("id")
    return [(row.subject.split("] ", 1)[1], row.recipients) for row in rows]


async def wrote_to_reporter(ticket: Ticket, at: datetime) -> None:
    party = await reporter_party(ticket)
    await OutboundMessage.create(
        kind="relay",
        sender="info@example.org",
        recipients=["sam@example.net"],
        message_id=f"<relay-{at.timestamp()}@example.org>",
        subject=f"[{ticket.ref}] Re: your report",
        raw_bytes=b"",
        ticket=ticket,
        party=party,
        created_at=at,
    )


FIRST_RESPONSE = ("First response due", ["bob@example.org"])


async def test_no_reminder_before_the_first_response_deadline(db: Settings) -> None:
    ticket = await case()
    assert await run_deadlines(db, T0 + 72 * HOUR - timedelta(minutes=1)) == []
    assert await reminders(ticket) == []


async def test_the_assignee_is_reminded_once_the_first_response_is_overdue(db: Settings) -> None:
    ticket = await case()
    sent = await run_deadlines(db, T0 + 72 * HOUR)
    assert sent == [f"{ticket.ref}: first_response reminder sent to bob@example.org"]
    assert await run_deadlines(db, T0 + 73 * HOUR) == []
    assert await reminders(ticket) == [FIRST_RESPONSE]
    row = await OutboundMessage.get(ticket=ticket, kind="reminder")
    bob = await team_party(ticket, await member("bob@example.org"))
    assert row.party_id == bob.id  # type: ignore[attr-defined]
    assert b"Reply-To:" in row.raw_bytes and b"info+" in row.raw_bytes
    assert SECRET.encode() not in row.raw_bytes
    assert await Reminder.filter(ticket=ticket).values_list("kind", flat=True) == ["first_response"]


async def test_a_reminder_recorded_meanwhile_by_another_run_is_not_sent_again(
    db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two runs may both read that a reminder is not recorded yet: the later
    insert fails in its savepoint, and the rest of that run's work still commits."""
    raced, other = await case(), await case()
    excluded_emails = deadlines.excluded_emails

    async def other_run_first(ticket: Ticket) -> set[str]:
        if ticket.id == raced.id:
            await Reminder.get_or_create(ticket=raced, kind="first_response")
        return await excluded_emails(ticket)

    monkeypatch.setattr(deadlines, "excluded_emails", other_run_first)
    await run_deadlines(db, T0 + 72 * HOUR)
    assert await reminders(raced) == []
    assert await reminders(other) == [FIRST_RESPONSE]


async def test_urgent_cases_use_the_short_first_response_deadline(db: Settings) -> None:
    ticket = await case(urgent=True)
    assert await run_deadlines(db, T0 + 4 * HOUR - timedelta(minutes=1)) == []
    await run_deadlines(db, T0 + 4 * HOUR)
    assert await reminders(ticket) == [FIRST_RESPONSE]


async def test_no_first_response_reminder_for_a_case_nobody_holds(db: Settings) -> None:
    ticket = await case(assignee=None)
    await run_deadlines(db, T0 + 80 * HOUR)
    assert await reminders(ticket) == []


async def test_no_first_response_reminder_once_the_reporter_was_answered(db: Settings) -> None:
    ticket = await case(first_response_at=T0 + HOUR)
    await run_deadlines(db, T0 + 5 * DAY)
    assert await reminders(ticket) == []


async def test_no_first_response_reminder_for_a_resolved_or_closed_case(db: Settings) -> None:
    resolved = await case(status=TicketStatus.RESOLVED)
    closed = await case(status=TicketStatus.CLOSED)
    await run_deadlines(db, T0 + 5 * DAY)
    assert await reminders(resolved) == [] and await reminders(closed) == []


async def test_escalation_tells_the_backup_and_the_leads_but_not_an_excluded_member_once(
    db: Settings,
) -> None:
    ticket = await case()
    await exclude_member(ticket, await member("dan@example.org"), "conflict of interest")
    await run_deadlines(db, T0 + 72 * HOUR)
    assert await run_deadlines(db, T0 + 96 * HOUR - timedelta(minutes=1)) == []
    await run_deadlines(db, T0 + 96 * HOUR)
    await run_deadlines(db, T0 + 97 * HOUR)
    escalated = [
        recipients
        for headline, recipients in await reminders(ticket)
        if headline == "Escalated: no first response"
    ]
    # Carol is the backup, Alice a lead; Bob holds the case (reminded already), Dan is excluded.
    assert sorted(address for (address,) in escalated) == [
        "alice@example.org",
        "carol@example.org",
    ]
    assert await Reminder.filter(ticket=ticket, kind="escalation").count() == 1


async def test_escalation_never_tells_the_assignee_again_even_as_a_lead(db: Settings) -> None:
    ticket = await case(assignee="alice@example.org", urgent=True)
    await run_deadlines(db, T0 + 6 * HOUR)  # urgent: 4 hours, then 2 more
    assert await reminders(ticket) == [
        ("First response due", ["alice@example.org"]),
        ("Escalated: no first response", ["carol@example.org"]),
        ("Escalated: no first response", ["dan@example.org"]),
    ]


async def test_the_reporter_update_reminder_comes_after_seven_days_without_an_email_to_them(
    db: Settings,
) -> None:
    ticket = await case(first_response_at=T0 + HOUR)
    await wrote_to_reporter(ticket, T0 + HOUR)
    assert await run_deadlines(db, T0 + HOUR + 7 * DAY - timedelta(minutes=1)) == []
    await run_deadlines(db, T0 + HOUR + 7 * DAY)
    await run_deadlines(db, T0 + 10 * DAY)
    assert await reminders(ticket) == [("The reporter is due an update", ["bob@example.org"])]


async def test_the_reporter_update_reminder_comes_again_in_the_next_period(db: Settings) -> None:
    ticket = await case(first_response_at=T0 + HOUR)
    await run_deadlines(db, T0 + 7 * DAY)
    await run_deadlines(db, T0 + 14 * DAY - timedelta(minutes=1))
    await run_deadlines(db, T0 + 14 * DAY)
    update = ("The reporter is due an update", ["bob@example.org"])
    assert await reminders(ticket) == [update, update]
    kinds = await Reminder.filter(ticket=ticket).order_by("id").values_list("kind", flat=True)
    assert kinds == ["update:1", "update:2"]


async def test_no_reporter_update_reminder_when_we_wrote_to_the_reporter_recently(
    db: Settings,
) -> None:
    ticket = await case(first_response_at=T0 + HOUR)
    await wrote_to_reporter(ticket, T0 + 6 * DAY)
    await run_deadlines(db, T0 + 8 * DAY)
    assert await reminders(ticket) == []


async def test_no_reporter_update_reminder_for_a_resolved_case(db: Settings) -> None:
    ticket = await case(first_response_at=T0 + HOUR, status=TicketStatus.RESOLVED)
    await run_deadlines(db, T0 + 8 * DAY)
    assert await reminders(ticket) == []


BAN_ENDS = T0 + 30 * DAY


async def test_the_ban_expiry_reminder_comes_inside_the_notice_window(db: Settings) -> None:
    ticket = await case(
        status=TicketStatus.RESOLVED, resolution="temporary-ban", resolution_ends_at=BAN_ENDS
    )
    await run_deadlines(db, BAN_ENDS - 2 * DAY)
    await run_deadlines(db, BAN_ENDS - DAY)
    assert await reminders(ticket) == [("A temporary measure ends soon", ["bob@example.org"])]
    row = await OutboundMessage.get(ticket=ticket, kind="reminder")
    assert b"temporary-ban" in row.raw_bytes
    assert BAN_ENDS.strftime("%Y-%m-%d %H:%M UTC").encode() in row.raw_bytes


async def test_no_ban_expiry_reminder_before_or_after_the_notice_window(db: Settings) -> None:
    ticket = await case(
        status=TicketStatus.CLOSED, resolution="temporary-ban", resolution_ends_at=BAN_ENDS
    )
    await run_deadlines(db, BAN_ENDS - 3 * DAY - timedelta(minutes=1))
    await run_deadlines(db, BAN_ENDS)
    await run_deadlines(db, BAN_ENDS + DAY)
    assert await reminders(ticket) == []


async def test_the_ban_expiry_reminder_goes_to_whoever_resolved_a_case_nobody_holds(
    db: Settings,
) -> None:
    ticket = await case(
        assignee=None,
        status=TicketStatus.RESOLVED,
        resolution="temporary-ban",
        resolved_by="carol@example.org",
        resolution_ends_at=BAN_ENDS,
    )
    await run_deadlines(db, BAN_ENDS - DAY)
    assert await reminders(ticket) == [("A temporary measure ends soon", ["carol@example.org"])]


async def test_resolve_with_a_temporary_measure_records_when_it_ends(db: Settings) -> None:
    temporary, permanent = await case(), await case()
    bob = await member("bob@example.org")
    for ticket, args in ((temporary, "temporary-ban repeated insults"), (permanent, "warning")):
        result = await run_command(
            CommandContext(db, ticket, bob, T0 + DAY), Command("resolve", args, "")
        )
        assert result.ok, result.message
    assert (await Ticket.get(id=temporary.id)).resolution_ends_at == T0 + 31 * DAY
    assert (await Ticket.get(id=permanent.id)).resolution_ends_at is None


def test_the_daemon_runs_the_deadlines_job_every_deadlines_every(
    make_settings: Callable[[dict[str, Any]], Settings], tmp_path: Path
) -> None:
    data = base_settings(tmp_path)
    data["schedule"] = {"deadlines_every": "15m"}
    daemon = Daemon(make_settings(data))
    daemon.add_jobs()
    job = daemon.scheduler.get_job("deadlines")
    assert job is not None
    assert job.trigger.interval == timedelta(minutes=15)


async def test_cron_s_poll_sends_the_reminders_that_are_due(tmp_path: Path) -> None:
    """Sites that run `intake poll` from cron instead of the daemon get their reminders too."""
    data = base_settings(tmp_path)
    (tmp_path / "mail" / "new").mkdir(parents=True)
    settings = settings_from(tmp_path, data)
    async with running(settings):
        bob = await TeamMember.get(email="bob@example.org")
        ticket = await Ticket.create(
            ref="COC-2026-0099", kind="report", reporter_email="sam@example.net", assignee=bob
        )
        await Ticket.filter(id=ticket.id).update(created_at=datetime.now(UTC) - 80 * HOUR)
    assert settings.source_file is not None
    result = intake("poll", config=settings.source_file)
    assert "1 deadline reminders" in result.stdout
    sent = [path.read_text() for path in (tmp_path / "outbox").glob("*.eml")]
    assert any("First response due" in text and "bob@example.org" in text for text in sent)


async def test_cases_imported_without_replies_get_no_reminders(db: Settings) -> None:
    quiet, ordinary = await case(), await case()
    await InboundMessage.create(
        raw_bytes=b"x", size=1, sha256="q" * 64, mailbox="m", folder="f", quiet=True, ticket=quiet
    )
    sent = await run_deadlines(db, T0 + 80 * HOUR)
    assert sent == [f"{ordinary.ref}: first_response reminder sent to bob@example.org"]
