"""The digest: each member's open cases (every open case a lead may see), with no report text and
no reporter address; once per `[digest] every`, on demand by `#digest`, and `intake digest
--dry-run`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intake.conduct.digest import digest_for, due_digests, run_digests
from intake.settings.schema import Settings
from intake.store.models import OutboundMessage, TeamMember, Ticket, TicketStatus
from tests.mailroom import Mailroom, reply, to_only
from tests.support import intake, make_mail, stored_inbound

BOB = "bob@example.org"  # on duty: every new case is his
ALICE = "alice@example.org"  # the lead


async def digests_by_member() -> dict[str, str]:
    rows = await OutboundMessage.filter(kind="digest").order_by("id")
    return {str(row.recipients[0]): row.raw_bytes.decode() for row in rows}


async def test_each_member_gets_the_open_cases_they_may_see(mailroom: Mailroom) -> None:
    await mailroom.send(make_mail(body="Max insulted me. My phone is 0170 555."))
    await mailroom.send(make_mail(sender="Kim <kim@example.net>", body="Bob Member shouted."))
    done = await Ticket.create(
        ref="COC-2026-0099", kind="report", reporter_email="", status=TicketStatus.CLOSED
    )
    cases = await Ticket.all().prefetch_related("assignee")
    bobs = [t.ref for t in cases if t.assignee and t.assignee.email == BOB]
    kept_from_bob = [t.ref for t in cases if t.assignee and t.assignee.email == ALICE]
    assert len(bobs) == 1 and len(kept_from_bob) == 1

    now = datetime.now(UTC)
    await run_digests(mailroom.settings, now)

    digests = await digests_by_member()
    assert set(digests) == {BOB, ALICE}
    assert bobs[0] in digests[BOB] and kept_from_bob[0] not in digests[BOB]
    assert bobs[0] in digests[ALICE] and kept_from_bob[0] in digests[ALICE]  # the lead sees all
    for text in digests.values():
        assert done.ref not in text  # closed
        assert "insulted" not in text and "0170 555" not in text  # no report text
        assert "sam@example.net" not in text and "kim@example.net" not in text  # no reporter
        assert "first response due" in text


async def test_a_digest_goes_once_per_period(mailroom: Mailroom) -> None:
    await mailroom.send(make_mail(body="Max insulted me."))
    now = datetime.now(UTC)
    assert len(await run_digests(mailroom.settings, now)) == 2
    assert await due_digests(mailroom.settings, now + timedelta(days=6)) == []
    assert len(await due_digests(mailroom.settings, now + timedelta(days=8))) == 2


async def test_digest_on_demand_by_email(mailroom: Mailroom) -> None:
    sent = await mailroom.send(make_mail(body="Max insulted me."))
    ticket = await Ticket.get()
    answer = await mailroom.send(reply(to_only(sent, BOB), BOB, "#digest"))
    [digest] = [m for m in answer if str(m["Subject"]).startswith("Open cases on")]
    assert str(digest["To"]).endswith(f"<{BOB}>")
    assert ticket.ref in digest.get_content()


async def test_intake_digest_dry_run_prints_and_sends_nothing(mailroom: Mailroom) -> None:
    await mailroom.send(make_mail(body="Max insulted me."))
    ticket = await Ticket.get()
    config = mailroom.settings.source_file
    assert config is not None

    result = intake("digest", "--dry-run", config=config)

    assert f"{BOB}: 1 open case(s), would be sent" in result.stdout
    assert ticket.ref in result.stdout
    assert await OutboundMessage.filter(kind="digest").count() == 0


async def test_a_case_imported_quietly_owes_no_deadline_in_the_digest(db: Settings) -> None:
    ticket = await Ticket.create(ref="COC-2026-0007", kind="report", reporter_email="")
    await stored_inbound(b"Subject: old\n\nold mail\n", ticket=ticket, quiet=True)
    [alice] = await TeamMember.filter(email=ALICE)

    digest = await digest_for(db, alice, datetime.now(UTC))

    [row] = digest.rows
    assert row.next_deadline.startswith("none: imported")
