"""Erasure on request: a person's addresses, names and words leave every case that may lose
them, and the database's files; cases that must be kept are named with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from intake.conduct.audit import record, trail
from intake.conduct.erasure import erase, plan_erasure
from intake.conduct.purge import run_purge
from intake.store.models import (
    Attachment,
    AuditAction,
    AuditEvent,
    InboundMessage,
    InboundState,
    OutboundMessage,
    Party,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tests.casework import bytes_found, decide, report
from tests.mailroom import Mailroom
from tests.support import (
    base_settings,
    intake,
    make_mail,
    stored_inbound,
    write_settings,
)

SAM = "sam@example.net"
MENTION = "Sam Reporter (sam@example.net) saw it too. Max called Pat a liar."


async def _two_cases_sam_is_in(mailroom: Mailroom) -> tuple[Ticket, Ticket]:
    """Sam's own report (with evidence), and Pat's report that names Sam; both closed."""
    own, notice = await report(mailroom)
    own = await decide(mailroom, own, notice)
    named, notice = await report(
        mailroom, sender="Pat Doe <pat@example.net>", subject="Max lied", body=MENTION
    )
    named = await decide(mailroom, named, notice)
    await mailroom.send(make_mail(sender=SAM, headers={"Auto-Submitted": "auto-replied"}))
    return own, named


async def test_an_erased_person_leaves_no_trace_in_the_database_or_the_data_directory(
    mailroom: Mailroom, tmp_path: Path
) -> None:
    own, named = await _two_cases_sam_is_in(mailroom)
    config = tmp_path / "settings.toml"
    database = [tmp_path / name for name in ("intake.sqlite3", "intake.sqlite3-wal")]
    places = [*[path for path in database if path.exists()], mailroom.settings.data_dir]
    assert bytes_found(SAM, *places)  # the test can see it before

    dry = intake("erase", "--person", SAM.upper(), "--dry-run", config=config).stdout
    assert f"erase from {own.ref}" in dry and f"erase from {named.ref}" in dry
    assert "clear 1 stored message(s) and 0 email(s) about no case" in dry
    assert (await Ticket.get(id=own.id)).reporter_email == SAM  # a dry run changes nothing

    done = intake("erase", "--person", SAM, "--yes", config=config).stdout
    assert f"{own.ref}: " in done and f"{named.ref}: " in done

    places = [*[path for path in database if path.exists()], mailroom.settings.data_dir]
    assert bytes_found(SAM, *places) == []
    assert bytes_found("Sam Reporter", *places) == []
    assert await Attachment.filter(ticket=own).count() == 0  # Sam's evidence went with Sam
    assert await Party.filter(email=SAM).count() == 0

    pats = await TicketEvent.filter(ticket=named, kind="inbound").first()
    assert pats is not None
    assert pats.body.startswith("[erased] ([erased]) saw it too. Max called Pat a liar.")
    assert (await Ticket.get(id=named.id)).reporter_email == "pat@example.net"
    [sams] = await TicketEvent.filter(ticket=own, kind="inbound")
    assert (sams.body, sams.author) == ("[erased on request]", "[erased]")

    lines = await trail(await Ticket.get(id=own.id))
    erasure = next(line for line in lines if line.action == "erase")
    assert "addresses and words removed" in erasure.what and SAM not in erasure.what
    summary = await AuditEvent.get(ticket_id=None, action="erase")
    assert "2 case(s) erased, 0 kept whole, 1 message(s)" in summary.what


async def test_cases_that_must_be_kept_are_named_with_the_reason_and_left_whole(
    mailroom: Mailroom,
) -> None:
    still_open, _ = await report(mailroom, evidence=None)
    banned, notice = await report(mailroom, subject="Max threatened me", evidence=None)
    banned = await decide(mailroom, banned, notice, "permanent-ban", close=False)
    settings = mailroom.settings
    now = datetime.now(UTC)

    plan = await plan_erasure(settings, [SAM], now)

    assert plan.erase == []
    assert [(ticket.ref, reason) for ticket, reason in plan.kept] == [
        (still_open.ref, "the case is new: decide or close it first"),
        (
            banned.ref,
            "permanent-ban is kept forever ([[retention.rules]] resolution = 'permanent-ban')",
        ),
    ]
    lines = await erase(settings, plan, "tester", now)
    assert lines == [f"{ticket.ref}: kept whole, {reason}" for ticket, reason in plan.kept]
    for ticket in (still_open, banned):
        kept = await Ticket.get(id=ticket.id)
        assert kept.reporter_email == SAM and await Party.filter(ticket=kept, email=SAM).exists()
        [refused] = await AuditEvent.filter(ticket=kept, action="erase")
        assert refused.what.startswith("not erased: ") and refused.actor == "tester"


def test_a_team_member_cannot_be_erased_by_address(tmp_path: Path) -> None:
    (tmp_path / "mail" / "new").mkdir(parents=True)
    config = write_settings(tmp_path, base_settings(tmp_path))
    result = intake("erase", "--person", "alice@example.org", "--yes", config=config, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "intake: erase: alice@example.org is a team member; remove them from [[team]] first"
    )


async def test_erasure_runs_the_same_on_postgresql(pg_mailroom: Mailroom) -> None:
    settings = pg_mailroom.settings
    _, named = await _two_cases_sam_is_in(pg_mailroom)
    now = datetime.now(UTC)
    await erase(settings, await plan_erasure(settings, [SAM], now), "tester", now)

    pats = await TicketEvent.filter(ticket=named, kind="inbound").first()
    assert pats is not None and pats.body.startswith("[erased] ([erased]) saw it too.")

    again = await plan_erasure(settings, [SAM], now)
    assert (again.erase, again.kept, again.no_case) == ([], [], (0, 0))
    for model, column in (
        (Ticket, "reporter_email"),
        (Ticket, "subject"),
        (TicketEvent, "body"),
        (TicketEvent, "author"),
        (AuditEvent, "what"),
        (InboundMessage, "reason"),
    ):
        assert not await model.filter(**{f"{column}__icontains": SAM}).exists(), column
    for raw in await InboundMessage.all().values_list("raw_bytes", flat=True):
        assert SAM.encode() not in bytes(raw).lower()  # type: ignore[arg-type]
    for raw, recipients in await OutboundMessage.all().values_list("raw_bytes", "recipients"):
        assert SAM.encode() not in bytes(raw).lower() and SAM not in recipients


async def test_only_the_whole_address_chooses_what_is_erased_and_names_only_scrub_within(
    mailroom: Mailroom,
) -> None:
    anns, notice = await report(mailroom, sender="Ann Lee <ann@example.net>", evidence=None)
    anns = await decide(mailroom, anns, notice)
    strangers_text = "At the annual planning joann@example.net and Ann Lee were rude to me."
    strangers, notice = await report(
        mailroom, sender="pat@example.net", subject="Planning", body=strangers_text, evidence=None
    )
    strangers = await decide(mailroom, strangers, notice)
    raw_before = [
        bytes(r)
        for r in await InboundMessage.filter(ticket=strangers).values_list("raw_bytes", flat=True)
    ]  # type: ignore[arg-type]
    now = datetime.now(UTC)

    plan = await plan_erasure(mailroom.settings, ["ann@example.net"], now)
    assert [ticket.ref for ticket in plan.erase] == [anns.ref]
    await erase(mailroom.settings, plan, "tester", now)

    raw_after = [
        bytes(r)
        for r in await InboundMessage.filter(ticket=strangers).values_list("raw_bytes", flat=True)
    ]  # type: ignore[arg-type]
    assert raw_after == raw_before  # a stranger's evidence is untouched
    event = await TicketEvent.filter(ticket=strangers, kind="inbound").first()
    assert event is not None and event.body.startswith(strangers_text)
    [own] = await TicketEvent.filter(ticket=anns, kind="inbound")
    assert own.body == "[erased on request]"


async def test_mail_not_yet_processed_is_left_alone_and_a_case_reopened_since_is_kept(
    mailroom: Mailroom,
) -> None:
    ticket, notice = await report(mailroom, evidence=None)
    ticket = await decide(mailroom, ticket, notice)
    parked_raw = make_mail(sender="pat@example.net", body=f"{SAM} hit me at the meetup.")
    parked = await stored_inbound(parked_raw, state=InboundState.FAILED)
    now = datetime.now(UTC)
    plan = await plan_erasure(mailroom.settings, [SAM], now)
    assert [t.ref for t in plan.erase] == [ticket.ref] and plan.found.unprocessed == {parked.id}

    await Ticket.filter(id=ticket.id).update(status=TicketStatus.INVESTIGATING)  # reopened
    lines = await erase(mailroom.settings, plan, "tester", now)

    assert lines == [
        f"{ticket.ref}: kept whole, the case is investigating: decide or close it first"
    ]
    kept = await Ticket.get(id=ticket.id)
    assert kept.reporter_email == SAM and kept.status == TicketStatus.INVESTIGATING
    assert bytes((await InboundMessage.get(id=parked.id)).raw_bytes) == parked_raw


async def test_erasure_reaches_what_a_purge_left_in_the_audit_trail(mailroom: Mailroom) -> None:
    ticket, notice = await report(mailroom, evidence=None)
    ticket = await decide(mailroom, ticket, notice)
    assert ticket.closed_at is not None
    await record(ticket, "alice", AuditAction.READ, "the case", f"{SAM} asked for a copy")
    await run_purge(mailroom.settings, ticket.closed_at + timedelta(days=800), "tester", False)
    assert await AuditEvent.filter(why__icontains=SAM).exists()
    now = datetime.now(UTC)

    plan = await plan_erasure(mailroom.settings, [SAM], now)
    assert [t.ref for t in plan.erase] == [ticket.ref]
    await erase(mailroom.settings, plan, "tester", now)

    assert not await AuditEvent.filter(why__icontains=SAM).exists()
    assert await AuditEvent.filter(why="[erased] asked for a copy").exists()


def _decoded(raw: bytes) -> str:
    """The text of a stored message, transfer encodings undone, as a reader of it would see."""
    message = message_from_bytes(raw, policy=policy.default)
    parts = [part for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(part.get_content() for part in parts)


async def test_an_address_inside_a_base64_body_is_found_and_erased(mailroom: Mailroom) -> None:
    own, notice = await report(mailroom, body="Grüße: Max hat mich zweimal beleidigt.")
    await decide(mailroom, own, notice)
    encoded = [
        row
        for row in await OutboundMessage.filter(ticket=own)
        if SAM.encode() not in bytes(row.raw_bytes) and SAM in _decoded(bytes(row.raw_bytes))
    ]
    assert encoded  # the assignment notice, whose report is base64: a byte search misses it

    plan = await plan_erasure(mailroom.settings, [SAM], datetime.now(UTC))
    await erase(mailroom.settings, plan, "tester", datetime.now(UTC))

    kept = [bytes(row.raw_bytes) for row in await OutboundMessage.all() if row.raw_bytes]
    assert not [raw for raw in kept if SAM in _decoded(raw)]
    cleared = await OutboundMessage.filter(id__in=[row.id for row in encoded])
    assert [bytes(row.raw_bytes) for row in cleared] == [b""] * len(encoded)
