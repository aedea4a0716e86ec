"""Two doors per case for each team member: a plain reply stays in the team; writing to the
reporter is deliberate (`#reply`, or the member's reporter door). End to end on Dovecot and
aiosmtpd."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from intake.conduct.digest import run_digests
from intake.runtime.cycle import running
from intake.store.models import InboundMessage, Ticket, TicketEvent
from intake.transport.delivery import deliver_once
from tests.mailroom import Mailroom, door, open_case, reply, reply_to, to_only
from tests.servers import Dovecot, SmtpSink
from tests.support import make_mail, settings_from

SAM = "sam@example.net"
BOB = "bob@example.org"  # on duty in the test roster: he is assigned
ALICE = "alice@example.org"  # the lead: copied on every case here


def addressed(sent: list[EmailMessage]) -> set[str]:
    return {str(m["To"]).split("<")[-1].rstrip(">") for m in sent}


@pytest.fixture
async def team_room(
    imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str, tmp_path: Path
) -> AsyncIterator[Mailroom]:
    """A conversation where the lead is copied on the case too, so two members are on it."""
    imap_config["conversations"] = {"copy_leads": True}
    settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        yield Mailroom(settings, dovecot, sink, folder)


async def opened(room: Mailroom) -> tuple[EmailMessage, EmailMessage]:
    """Sam's report; returns the acknowledgement and Bob's assignment notice."""
    ticket, ack, notice = await open_case(room)
    assert ticket.assignee is not None and ticket.assignee.email == BOB
    return ack, notice


async def test_every_email_to_a_member_opens_with_what_a_reply_does(team_room: Mailroom) -> None:
    _, notice = await opened(team_room)
    first_line = notice.get_content().lstrip().splitlines()[0]
    assert first_line.startswith("Replies to this email reach only the team on COC-")
    assert door(notice) != reply_to(notice)
    assert "-r-" in door(notice) and door(notice).startswith("info+")


async def test_a_plain_reply_to_the_notice_stays_in_the_team(team_room: Mailroom) -> None:
    _, notice = await opened(team_room)
    remark = "I know him, he is a friend of my brother."

    sent = await team_room.send(reply(notice, BOB, remark))

    assert addressed(sent) == {ALICE}  # the other member on the case; never its author
    assert remark in sent[0].get_content()
    assert sent[0]["Subject"].endswith("Bob Member wrote to the team")
    assert sent[0]["Auto-Submitted"] == "auto-generated"
    inbound = await team_room.last_outcome()
    assert inbound.outcome == "appended_internal"
    entry = await TicketEvent.get(inbound=inbound)
    assert entry.internal and remark in entry.body


async def test_a_plain_reply_to_a_follow_up_copy_stays_in_the_team(team_room: Mailroom) -> None:
    ack, _ = await opened(team_room)
    sent = await team_room.send(reply(ack, "Sam Reporter <sam@example.net>", "It got worse."))
    copy = to_only(sent, BOB)

    sent = await team_room.send(reply(copy, BOB, "Should we ban him? Thinking aloud."))

    assert SAM not in addressed(sent)
    assert addressed(sent) == {ALICE}


async def test_reply_on_the_first_line_reaches_the_reporter_clean(team_room: Mailroom) -> None:
    _, notice = await opened(team_room)

    sent = await team_room.send(
        reply(notice, BOB, "#reply\nWhen did this happen?\n\n-- \nBob\n+49 170 555")
    )

    relayed = to_only(sent, SAM)
    text = relayed.get_content()
    assert "When did this happen?" in text
    assert "#reply" not in text and "+49 170 555" not in text and "Max" not in text
    assert relayed["From"] == "Example Code of Conduct Team <info@example.org>"
    assert BOB.encode() not in relayed.as_bytes()
    assert (await team_room.last_outcome()).outcome == "relayed"


async def test_the_reporter_door_reaches_the_reporter_clean(team_room: Mailroom) -> None:
    _, notice = await opened(team_room)

    sent = await team_room.send(reply(notice, BOB, "Thank you, we are on it.", to=door(notice)))

    relayed = to_only(sent, SAM)
    assert "Thank you, we are on it." in relayed.get_content()
    assert BOB.encode() not in relayed.as_bytes()
    assert (await team_room.last_outcome()).outcome == "relayed"


async def test_a_reporter_door_used_by_anyone_but_its_member_is_refused(
    team_room: Mailroom,
) -> None:
    _, notice = await opened(team_room)
    for sender in ("Mallory <mallory@example.com>", ALICE, "Sam Reporter <sam@example.net>"):
        sent = await team_room.send(reply(notice, sender, "Let me through.", to=door(notice)))
        assert sent == [], sender
        assert (await team_room.last_outcome()).outcome == "rejected_forged_token", sender


@pytest.mark.parametrize("answers", ["reply-to", "from"])
async def test_a_members_headerless_out_of_office_reaches_nobody_outside_the_team(
    team_room: Mailroom, answers: str
) -> None:
    """An autoresponder answers the Reply-To (an internal door) or From (info@ itself)."""
    _, notice = await opened(team_room)
    to = reply_to(notice) if answers == "reply-to" else "info@example.org"
    out_of_office = reply(notice, BOB, "I am on holiday until 3 January.", to=to)

    sent = await team_room.send(out_of_office)

    assert SAM not in addressed(sent)
    assert addressed(sent) <= {ALICE, BOB}
    assert (await team_room.last_outcome()).outcome == "appended_internal"


async def test_two_headerless_autoresponders_on_one_case_die_out(team_room: Mailroom) -> None:
    """Bob and Alice both run an autoresponder that answers everything and sets no header."""
    _, notice = await opened(team_room)
    away = {BOB: "Bob is away until Monday.", ALICE: "Alice is travelling this week."}
    pending = [(notice, BOB)]
    exchanged = 0
    while pending and exchanged < 20:
        message, member = pending.pop(0)
        sent = await team_room.send(reply(message, member, away[member]))
        exchanged += 1
        assert SAM not in addressed(sent)
        pending += [(m, to) for m in sent for to in addressed([m]) if to in away]

    assert not pending
    assert exchanged <= 3
    outcomes = await InboundMessage.filter(outcome="relayed").count()
    assert outcomes == 0


async def test_reply_to_a_role_reaches_that_party_and_never_a_team_member(
    team_room: Mailroom,
) -> None:
    _, notice = await opened(team_room)
    await team_room.send(reply(notice, BOB, "#contact max@example.com witness\nDid you see it?"))

    sent = await team_room.send(reply(notice, BOB, "#reply witness\nWhen was that, exactly?"))
    assert addressed(sent) >= {"max@example.com"} and SAM not in addressed(sent)
    assert "When was that, exactly?" in to_only(sent, "max@example.com").get_content()

    sent = await team_room.send(reply(notice, BOB, f"#reply {ALICE}\nFor your eyes."))
    assert addressed(sent) == {BOB}  # refused, and Bob is told why
    assert "nobody on this case has that address or role" in sent[0].get_content()


async def test_a_reply_meant_for_the_reporter_can_be_sent_again_with_reply(
    team_room: Mailroom,
) -> None:
    _, notice = await opened(team_room)
    await team_room.send(reply(notice, BOB, "Could you tell us more?"))  # to the team only
    sent = await team_room.send(reply(notice, BOB, "#reply\nCould you tell us more?"))
    assert "Could you tell us more?" in to_only(sent, SAM).get_content()


async def test_a_relay_carrying_a_reply_address_is_refused(team_room: Mailroom) -> None:
    _, notice = await opened(team_room)
    pasted = f"Write to me at {door(notice)} any time."
    sent = await team_room.send(reply(notice, BOB, pasted, to=door(notice)))
    assert addressed(sent) == {BOB}
    assert "reply addresses" in sent[0].get_content()


async def test_an_excluded_member_never_gets_a_copy_of_the_discussion(
    imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str, tmp_path: Path
) -> None:
    imap_config["conversations"] = {"copy_leads": True}
    settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        room = Mailroom(settings, dovecot, sink, folder)
        sent = await room.send(make_mail(body="Alice Lead laughed when Max insulted me."))
        notice = to_only(sent, BOB)
        sent = await room.send(reply(notice, BOB, "Alice is named: careful."))
        assert ALICE not in addressed(sent) and SAM not in addressed(sent)
        assert addressed(sent) == {BOB}  # told that nobody else was sent it
        assert "nobody was sent it" in sent[0].get_content()


async def test_a_reply_to_a_digest_is_recorded_and_never_a_case(team_room: Mailroom) -> None:
    await opened(team_room)
    await run_digests(team_room.settings, datetime.now(UTC))
    await deliver_once(team_room.settings)
    [digest] = [
        m.parsed()
        for m in team_room.sink.messages
        if str(m.parsed()["Subject"]).startswith("Open cases") and BOB in str(m.parsed()["To"])
    ]
    cases = await Ticket.all().count()

    sent = await team_room.send(
        reply(digest, BOB, "I am away until Monday.", to="info@example.org")
    )

    assert (await team_room.last_outcome()).outcome == "ignored_notice_reply"
    assert await Ticket.all().count() == cases
    assert [m for m in sent if not str(m["Subject"]).startswith("Open cases")] == []
