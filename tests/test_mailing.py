"""Mail to a party threads on what it answers, or on the party's conversation so far."""

from __future__ import annotations

from email import message_from_bytes

from intake.conduct.mailing import mail_party
from intake.conduct.parties import add_party
from intake.engine.compose import Answering
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import OutboundMessage, Party, PartyRole, Ticket
from tests.support import stored_inbound

RELAY = {"reporter_name": "Sam", "text": "A question from the team."}


async def open_case(settings: Settings) -> tuple[Ticket, Party, OutboundMessage]:
    """A case whose reporter has been sent one email."""
    ticket = await Ticket.create(
        ref="COC-2026-0001", kind="report", subject="s", reporter_email="sam@example.net"
    )
    party = await add_party(ticket, PartyRole.REPORTER, "sam@example.net", "Sam")
    first = await mail_party(settings, ticket, party, TemplateName.RELAY, RELAY, internal=False)
    assert first is not None
    return ticket, party, first


async def test_an_answer_threads_on_the_message_it_answers(db: Settings) -> None:
    ticket, party, _ = await open_case(db)
    answered = Answering(None, "<their-reply@example.net>", ("<earlier@example.net>",))

    sent = await mail_party(
        db, ticket, party, TemplateName.RELAY, RELAY, internal=False, answering=answered
    )

    assert sent is not None
    headers = message_from_bytes(sent.raw_bytes)
    assert headers["In-Reply-To"] == "<their-reply@example.net>"
    assert "<earlier@example.net>" in str(headers["References"])


async def test_an_answer_to_mail_without_a_message_id_threads_on_the_conversation(
    db: Settings,
) -> None:
    ticket, party, first = await open_case(db)
    inbound = await stored_inbound(b"Subject: x\n\nno Message-ID\n", ticket=ticket)

    sent = await mail_party(
        db,
        ticket,
        party,
        TemplateName.RELAY,
        RELAY,
        internal=False,
        answering=Answering(inbound, None, ()),
    )

    assert sent is not None
    assert message_from_bytes(sent.raw_bytes)["In-Reply-To"] == first.message_id
    linked = await OutboundMessage.get(id=sent.id).values_list("in_reply_to_id", flat=True)
    assert linked == inbound.id
