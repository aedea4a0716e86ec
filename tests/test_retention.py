"""Retention: a decided case's content goes when its period runs out; what the ban list and the
figures need stays; the clock is the test's."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intake.conduct.audit import trail
from intake.conduct.purge import (
    remove_unused_files,
    run_purge,
    scheduled_purge,
    sweep_unused_files,
)
from intake.conduct.retention import due_at, holding
from intake.conduct.stats import case_stats
from intake.errors import SettingsError
from intake.settings.loading import load_settings
from intake.settings.schema import Settings, Stats
from intake.store.blobs import blob_path, store_blob
from intake.store.models import (
    Attachment,
    InboundMessage,
    OutboundMessage,
    Party,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tests.casework import EVIDENCE, bytes_found, decide, report
from tests.daemon import running_daemon
from tests.mailroom import Mailroom, reply, to_only
from tests.support import (
    REPO,
    base_settings,
    delivery_report,
    intake,
    make_mail,
    write_settings,
)

TWO_YEARS = timedelta(days=730)
DAY = timedelta(days=1)


def counting_every_case(settings: Settings) -> Settings:
    """`intake stats` with no suppression, so that a changed count shows."""
    return settings.model_copy(update={"stats": Stats(min_count=1)})


async def _purge_keeps_the_record_and_the_figures(mailroom: Mailroom) -> None:
    settings = mailroom.settings
    ticket, notice = await report(mailroom)
    assert ticket.assignee is not None
    assignee = ticket.assignee.email
    ticket = await decide(mailroom, ticket, notice, "warning")
    assert ticket.closed_at is not None and ticket.status == TicketStatus.CLOSED
    figures = await case_stats(counting_every_case(settings), None, None)
    blob = blob_path(settings.data_dir, (await Attachment.get(ticket=ticket)).sha256)
    assert blob.read_bytes() == EVIDENCE

    not_yet = await run_purge(settings, ticket.closed_at + TWO_YEARS - DAY, "tester", True)
    assert not_yet.purged == []
    listed = await run_purge(settings, ticket.closed_at + TWO_YEARS + DAY, "tester", True)
    assert [item.ref for item in listed.purged] == [ticket.ref]
    assert listed.purged[0].rule == "[retention] default"
    assert (
        await Ticket.get(id=ticket.id)
    ).subject == "Max insulted me"  # a dry run changes nothing

    run = await run_purge(settings, ticket.closed_at + TWO_YEARS + DAY, "tester", False)
    assert [item.ref for item in run.purged] == [ticket.ref]
    assert run.files_removed == 1 and not blob.exists()

    purged = await Ticket.get(id=ticket.id)
    assert (purged.ref, purged.kind, purged.status, purged.resolution) == (
        ticket.ref,
        "report",
        TicketStatus.CLOSED,
        "warning",
    )
    assert (purged.created_at, purged.resolved_at, purged.closed_at) == (
        ticket.created_at,
        ticket.resolved_at,
        ticket.closed_at,
    )
    assert purged.purged_at == ticket.closed_at + TWO_YEARS + DAY
    assert (purged.subject, purged.reporter_email, purged.reporter_name) == ("", "", "")
    assert purged.resolution_reason == ""
    [entry] = await TicketEvent.filter(ticket=ticket)
    assert "purged" in entry.body and "[retention] default" in entry.body
    assert await Party.filter(ticket=ticket).count() == 0
    assert await Attachment.filter(ticket=ticket).count() == 0
    for message in await InboundMessage.filter(ticket=ticket):
        assert bytes(message.raw_bytes) == b"" and message.message_id is None
        assert len(message.sha256) == 64  # a re-fetch of it still finds it stored
    for email in await OutboundMessage.filter(ticket=ticket):
        assert (bytes(email.raw_bytes), email.recipients, email.subject) == (b"", [], "")

    assert await case_stats(counting_every_case(settings), None, None) == figures
    lines = await trail(purged)
    purge_line = next(line for line in lines if line.action == "purge")
    assert purge_line.why == "[retention] default" and purge_line.actor == "tester"
    emails = [line for line in lines if line.action == "email"]
    assert {line.actor for line in emails} >= {"the reporter", assignee}
    assert not any("sam@example.net" in line.actor for line in lines)

    again = await run_purge(settings, ticket.closed_at + TWO_YEARS + 2 * DAY, "tester", False)
    assert again.purged == []


async def test_a_closed_case_loses_its_content_and_keeps_its_record_and_figures(
    mailroom: Mailroom,
) -> None:
    await _purge_keeps_the_record_and_the_figures(mailroom)


async def test_purging_runs_the_same_on_postgresql(pg_mailroom: Mailroom) -> None:
    await _purge_keeps_the_record_and_the_figures(pg_mailroom)


async def test_a_file_shared_with_a_case_that_is_kept_survives(mailroom: Mailroom) -> None:
    first, notice = await report(mailroom)
    first = await decide(mailroom, first, notice)
    second, _ = await report(mailroom, sender="pat@example.net", subject="Max again")
    assert second.status == TicketStatus.NEW
    [shared] = {row.sha256 for row in await Attachment.all()}
    assert first.closed_at is not None

    run = await run_purge(mailroom.settings, first.closed_at + TWO_YEARS + DAY, "tester", False)

    assert [item.ref for item in run.purged] == [first.ref]
    assert run.files_removed == 0
    assert blob_path(mailroom.settings.data_dir, shared).read_bytes() == EVIDENCE
    assert await Attachment.filter(ticket=second).count() == 1


async def test_a_permanent_ban_is_kept_forever_and_an_open_appeal_holds_its_case(
    mailroom: Mailroom,
) -> None:
    banned, notice = await report(mailroom)
    banned = await decide(mailroom, banned, notice, "permanent-ban", close=False)
    warned, notice = await report(mailroom, sender="pat@example.net", evidence=None)
    warned = await decide(mailroom, warned, notice, "warning")
    assert warned.closed_at is not None
    await Ticket.create(
        ref="COC-2026-9001", kind="appeal", reporter_email="max@example.com", refers_to=warned
    )
    far = datetime.now(UTC) + 50 * 365 * DAY

    run = await run_purge(mailroom.settings, far, "tester", False)

    assert run.purged == []
    assert [(item.ref, item.held) for item in run.held] == [
        (warned.ref, "an open case points at it (an appeal)")
    ]
    assert holding(mailroom.settings, banned).keep is None
    assert due_at(mailroom.settings, banned) is None
    assert (await Ticket.get(id=banned.id)).subject == "Max insulted me"


def _rules(tmp_path: Path, retention: dict[str, Any]) -> Settings:
    data = base_settings(tmp_path)
    data["retention"] = retention
    return load_settings(write_settings(tmp_path, data))


def _case(**fields: Any) -> Ticket:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    values: dict[str, Any] = {
        "kind": "report",
        "status": TicketStatus.CLOSED,
        "resolved_at": now,
        "closed_at": now,
        "updated_at": now,
    }
    return Ticket(ref="COC-2026-0001", reporter_email="x@example.net", **{**values, **fields})


def test_the_first_matching_rule_gives_the_period_and_the_clock_waits_for_appeals_and_measures(
    tmp_path: Path,
) -> None:
    defaults = _rules(tmp_path, {})
    closed = datetime(2026, 3, 1, tzinfo=UTC)
    assert due_at(defaults, _case(resolution="warning")) == closed + TWO_YEARS
    assert due_at(defaults, _case(kind="general")) == closed + timedelta(days=90)
    assert due_at(defaults, _case(resolution="permanent-ban")) is None  # kept forever
    assert due_at(defaults, _case(status=TicketStatus.INVESTIGATING)) is None  # not decided
    ends = closed + timedelta(days=30)
    temporary = _case(resolution="temporary-ban", resolution_ends_at=ends)
    assert due_at(defaults, temporary) == ends + TWO_YEARS  # from the measure's end

    settings = _rules(
        tmp_path,
        {
            "default": "1y",
            "rules": [
                {"resolution": "warning", "status": "closed", "keep": "30d"},
                {"resolution": "warning", "keep": "forever"},
                {"resolution": "permanent-ban", "keep": "10d"},
            ],
        },
    )
    assert due_at(settings, _case(resolution="warning")) == closed + timedelta(days=30)
    assert due_at(settings, _case(resolution="warning", status=TicketStatus.RESOLVED)) is None
    assert due_at(settings, _case(resolution="no-action")) == closed + timedelta(days=365)
    # An appealable decision's clock starts when its appeal window has closed.
    appeal_window = settings.appeals.window
    expected = closed + appeal_window + timedelta(days=10)
    assert due_at(settings, _case(resolution="permanent-ban")) == expected


@pytest.mark.parametrize(
    ("retention", "expected"),
    [
        ({"default": "soon"}, "retention.default"),
        ({"rules": [{"keep": "30d"}]}, "a rule needs at least one of kind, resolution or status"),
        ({"rules": [{"resolution": "flogging", "keep": "1y"}]}, "'flogging' is not one of"),
        ({"rules": [{"kind": "complaint", "keep": "1y"}]}, "retention.rules.kind: Input should be"),
        ({"rules": [{"kind": "report"}]}, "retention.rules.keep: is required"),
    ],
)
def test_a_bad_policy_is_one_line_naming_the_key(
    tmp_path: Path, retention: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        _rules(tmp_path, retention)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_mail_about_no_case_loses_its_bytes_after_its_own_period(mailroom: Mailroom) -> None:
    await mailroom.send(make_mail(headers={"Auto-Submitted": "auto-replied"}))
    [ignored] = await InboundMessage.filter(ticket_id__isnull=True)
    assert ignored.outcome == "ignored_auto_reply"
    now = datetime.now(UTC)

    soon = await run_purge(mailroom.settings, now + timedelta(days=89), "tester", False)
    assert soon.no_case_messages == 0
    later = await run_purge(mailroom.settings, now + timedelta(days=91), "tester", False)

    assert later.no_case_messages == 1
    assert bytes((await InboundMessage.get(id=ignored.id)).raw_bytes) == b""


async def test_the_scheduled_purge_runs_once_per_interval_across_daemons(db: Settings) -> None:
    now = datetime.now(UTC)
    assert await scheduled_purge(db, now, "daemon one") is not None
    assert await scheduled_purge(db, now, "daemon two") is None
    off = db.model_copy(update={"retention": db.retention.model_copy(update={"purge": False})})
    assert await scheduled_purge(off, now, "daemon three") is None


def _closed_long_ago(tmp_path: Path) -> tuple[Path, str]:
    """Two reports made cases by `intake poll`; the first then closed six years ago (its
    reference is returned)."""
    (tmp_path / "mail" / "new").mkdir(parents=True)
    config = write_settings(tmp_path, base_settings(tmp_path))
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(make_mail(subject="Slurs in the chat"))
    (tmp_path / "mail" / "new" / "2.eml").write_bytes(make_mail(subject="Doxxing threat"))
    intake("poll", "--once", config=config)
    long_ago = (datetime.now(UTC) - 3 * TWO_YEARS).strftime("%Y-%m-%d %H:%M:%S+00:00")
    with sqlite3.connect(tmp_path / "intake.sqlite3") as database:
        database.execute(
            "UPDATE ticket SET status = 'closed', resolution = 'warning', resolved_at = ?,"
            " closed_at = ? WHERE subject = 'Slurs in the chat'",
            (long_ago, long_ago),
        )
        [(ref,)] = database.execute("SELECT ref FROM ticket WHERE subject = 'Slurs in the chat'")
        database.execute(  # and its mail came then too: new mail restarts the clock
            "UPDATE ticket_event SET created_at = ?"
            " WHERE ticket_id = (SELECT id FROM ticket WHERE ref = ?)",
            (long_ago, ref),
        )
    return config, ref


def _subjects(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "intake.sqlite3") as database:
        return [subject for (subject,) in database.execute("SELECT subject FROM ticket")]


def _last_purge_yesterday(tmp_path: Path) -> None:
    yesterday = (datetime.now(UTC) - DAY).strftime("%Y-%m-%d %H:%M:%S+00:00")
    with sqlite3.connect(tmp_path / "intake.sqlite3") as database:
        database.execute(
            "UPDATE job_run SET succeeded_at = ? WHERE name = 'retention purge'", (yesterday,)
        )


def _policy_past_its_grace(tmp_path: Path) -> None:
    """As if the scheduled purge had first met the policy eight days ago."""
    long_ago = (datetime.now(UTC) - 8 * DAY).strftime("%Y-%m-%d %H:%M:%S+00:00")
    with sqlite3.connect(tmp_path / "intake.sqlite3") as database:
        database.execute("UPDATE retention_policy SET in_force_since = ?", (long_ago,))


def test_a_policy_new_on_the_database_purges_nothing_for_a_week_and_says_so(
    tmp_path: Path,
) -> None:
    config, ref = _closed_long_ago(tmp_path)  # its `intake poll` first met the policy
    _last_purge_yesterday(tmp_path)

    poll = intake("poll", "--once", config=config)
    starts = (datetime.now(UTC) + 7 * DAY).strftime("%Y-%m-%d")
    assert f"1 case(s) it lets go are kept until {starts}" in poll.stderr
    assert f"purged {ref}" not in poll.stderr
    check = intake("check", config=config, check=False).stdout
    assert f"this policy is new here: purging starts {starts}" in check
    assert "warning  retention" in check
    assert "Slurs in the chat" in _subjects(tmp_path)

    _policy_past_its_grace(tmp_path)
    _last_purge_yesterday(tmp_path)
    poll = intake("poll", "--once", config=config)
    assert f"purged {ref} by [retention] default" in poll.stderr
    assert "this policy is new" not in intake("check", config=config, check=False).stdout


async def test_changed_rules_start_the_grace_again(db: Settings) -> None:
    now = datetime.now(UTC)
    await scheduled_purge(db, now - 8 * DAY, "daemon")
    past_grace = await scheduled_purge(db, now, "daemon")
    assert past_grace is not None and past_grace.waits_until is None

    retention = db.retention.model_copy(update={"default": timedelta(days=365)})
    shorter = db.model_copy(update={"retention": retention})
    assert shorter.retention_fingerprint != db.retention_fingerprint
    waiting = await scheduled_purge(shorter, now + 2 * DAY, "daemon")
    assert waiting is not None and waiting.waits_until == now + 9 * DAY

    back = await scheduled_purge(db, now + 4 * DAY, "daemon")  # the old one is new again
    assert back is not None and back.waits_until == now + 11 * DAY
    window = db.appeals.model_copy(update={"window": timedelta(days=1)})
    assert (
        db.model_copy(update={"appeals": window}).retention_fingerprint != db.retention_fingerprint
    )


def test_cron_poll_purges_once_a_day_and_intake_purge_lists_then_purges(tmp_path: Path) -> None:
    config, ref = _closed_long_ago(tmp_path)  # its `intake poll` ran today's purge: none due
    _policy_past_its_grace(tmp_path)

    poll = intake("poll", "--once", config=config)
    assert "purged" not in poll.stderr  # due, but the day's purge has run (in another process)
    dry = intake("purge", "--dry-run", config=config)
    assert ref in dry.stdout and "would be purged" in dry.stdout
    assert "Slurs in the chat" in intake("ticket", ref, config=config).stdout

    _last_purge_yesterday(tmp_path)
    poll = intake("poll", "--once", config=config)  # a day later: the scheduled purge is due
    assert f"purged {ref} by [retention] default" in poll.stderr
    shown = intake("ticket", ref, config=config).stdout
    assert "Slurs in the chat" not in shown and "Content purged" in shown
    assert _subjects(tmp_path) == ["", "Doxxing threat"]
    assert "0 case(s) purged" in intake("purge", config=config).stdout


def test_intake_purge_by_hand_purges_what_is_due_at_once(tmp_path: Path) -> None:
    config, ref = _closed_long_ago(tmp_path)

    done = intake("purge", config=config).stdout

    assert ref in done and "1 case(s) purged" in done
    assert _subjects(tmp_path) == ["", "Doxxing threat"]


def test_the_daemon_purges_what_is_due(tmp_path: Path) -> None:
    config, ref = _closed_long_ago(tmp_path)
    _policy_past_its_grace(tmp_path)
    _last_purge_yesterday(tmp_path)

    with running_daemon(config) as daemon:
        daemon.wait_for_log(f"purged {ref} by [retention] default")

    assert _subjects(tmp_path) == ["", "Doxxing threat"]


async def test_mail_to_a_purged_case_is_a_new_report_not_a_forgery(mailroom: Mailroom) -> None:
    sent = await mailroom.send(make_mail(subject="Max insulted me", body="He called me names."))
    acknowledgement = to_only(sent, "sam@example.net")
    ticket = await Ticket.get().prefetch_related("assignee")
    notice = to_only(sent, ticket.assignee.email)  # type: ignore[union-attr]
    ticket = await decide(mailroom, ticket, notice)
    assert ticket.closed_at is not None
    await run_purge(mailroom.settings, ticket.closed_at + TWO_YEARS + DAY, "tester", False)

    answered = await mailroom.send(
        reply(acknowledgement, "Sam Reporter <sam@example.net>", "He has started again.")
    )

    outcome = await mailroom.last_outcome()
    assert outcome.outcome == "ticket_created"
    assert outcome.ticket is not None and outcome.ticket.id != ticket.id
    assert any("assigned to you" in str(message["Subject"]) for message in answered)
    assert await TicketEvent.filter(ticket=ticket).count() == 1  # the purged case stays empty


def test_by_default_the_most_severe_rung_of_any_ladder_is_kept_forever() -> None:
    mautic = load_settings(REPO / "examples" / "mautic" / "settings.toml")
    most_severe = mautic.resolutions[-1].name
    assert most_severe == "permanent-expulsion"
    assert holding(mautic, _case(resolution=most_severe)).keep is None
    assert holding(mautic, _case(resolution=mautic.resolutions[0].name)).keep == TWO_YEARS


async def test_a_purge_leaves_no_byte_of_the_reporter_and_later_mail_stays_out_of_it(
    mailroom: Mailroom, tmp_path: Path
) -> None:
    ticket, notice = await report(mailroom)
    ticket = await decide(mailroom, ticket, notice)
    assert ticket.closed_at is not None
    acknowledgement = await OutboundMessage.get(ticket=ticket, kind="acknowledgement")
    await run_purge(mailroom.settings, ticket.closed_at + TWO_YEARS + DAY, "tester", False)

    files = [tmp_path / "intake.sqlite3", mailroom.settings.data_dir]
    assert bytes_found("sam@example.net", *files) == []
    assert bytes_found("called me an idiot", *files) == []
    assert bytes_found("Max insulted me", *files) == []

    bounce = delivery_report(acknowledgement.message_id, "5.1.1", "550 <sam@example.net> unknown")
    await mailroom.send(bounce)
    outcome = await mailroom.last_outcome()
    assert outcome.outcome == "ignored_bounce" and outcome.ticket is None  # mail about no case
    assert await TicketEvent.filter(ticket=ticket).count() == 1
    assert (await OutboundMessage.get(id=acknowledgement.id)).last_error is None


async def test_new_mail_and_a_new_decision_restart_the_clock(mailroom: Mailroom) -> None:
    ticket, notice = await report(mailroom)
    assert ticket.assignee is not None
    member = ticket.assignee.email
    closed = await decide(mailroom, ticket, notice)
    assert closed.closed_at is not None
    later = closed.closed_at + 100 * DAY
    assert due_at(mailroom.settings, closed, last_mail=later) == later + TWO_YEARS

    await mailroom.send(reply(notice, member, "#resolve correction on second thoughts"))

    decided_again = await Ticket.get(id=ticket.id)
    assert decided_again.status == TicketStatus.RESOLVED and decided_again.closed_at is None
    assert decided_again.resolved_at is not None
    expected = decided_again.resolved_at + TWO_YEARS
    assert due_at(mailroom.settings, decided_again) == expected


async def test_files_left_by_a_run_that_died_are_swept_and_files_stored_again_are_kept(
    db: Settings,
) -> None:
    now = datetime.now(UTC)
    old, fresh = store_blob(db.data_dir, b"old orphan"), store_blob(db.data_dir, b"new orphan")
    past = (now - 2 * DAY).timestamp()
    os.utime(blob_path(db.data_dir, old), (past, past))

    assert await sweep_unused_files(db, now - DAY) == 1
    assert not blob_path(db.data_dir, old).exists() and blob_path(db.data_dir, fresh).exists()

    stored_again = store_blob(db.data_dir, b"new orphan")  # a new message brings the same file
    removed_row_made = now - timedelta(minutes=5)
    assert await remove_unused_files(db, {stored_again: removed_row_made}) == 0
    assert blob_path(db.data_dir, stored_again).exists()


def test_intake_check_warns_when_cases_are_due_and_nobody_purges(tmp_path: Path) -> None:
    config, _ = _closed_long_ago(tmp_path)
    data = base_settings(tmp_path)
    data["retention"] = {"purge": False}
    config = write_settings(tmp_path, data)

    checked = intake("check", config=config).stdout

    assert (
        "warning  retention  1 case(s) due for purging, 0 held;"
        " [retention] purge = false: `intake purge`"
    ) in checked
