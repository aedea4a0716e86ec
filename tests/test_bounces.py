"""Bounces of our own mail: never answered, matched to the email they report on."""

from __future__ import annotations

import logging

import pytest

from intake.runtime.cycle import poll_once
from intake.settings.schema import Settings
from intake.store.models import (
    EventKind,
    InboundMessage,
    OutboundMessage,
    OutboundState,
    TicketEvent,
)
from tests.servers import Dovecot, SmtpSink, free_port
from tests.support import delivery_report, make_mail


async def _acknowledged_report(
    settings: Settings, dovecot: Dovecot, folder: str
) -> OutboundMessage:
    """A report fetched, processed and acknowledged; its acknowledgement."""
    dovecot.append(make_mail(), folder=folder)
    await poll_once(settings)
    return await OutboundMessage.get(kind="acknowledgement")


async def test_a_bounce_marks_our_acknowledgement_bounced_and_tells_the_case(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    ack = await _acknowledged_report(imap_db, dovecot, folder)
    assert ack.state == OutboundState.SENT
    sent_before = len(sink.messages)

    dovecot.append(
        delivery_report(ack.message_id, "5.1.1", "550 5.1.1 No such user"), folder=folder
    )
    stats = await poll_once(imap_db)

    assert stats.process.outcomes == {"ignored_bounce": 1}
    assert len(sink.messages) == sent_before  # a bounce is never answered
    await ack.refresh_from_db()
    assert ack.state == OutboundState.BOUNCED
    assert ack.last_error == "bounced: 5.1.1 smtp; 550 5.1.1 No such user"
    note = await TicketEvent.get(kind=EventKind.NOTE)
    assert note.internal
    assert "could not be delivered: 5.1.1" in note.body and "sam@example.net" in note.body
    bounce = await InboundMessage.get(message_id="<dsn-1@mx.example.net>")
    assert f"bounce of outbound {ack.id}" in bounce.reason


async def test_a_delay_notice_leaves_the_email_sent_and_notes_the_delay(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    ack = await _acknowledged_report(imap_db, dovecot, folder)
    dovecot.append(delivery_report(ack.message_id, "4.4.1", "451 4.4.1 Try later"), folder=folder)
    await poll_once(imap_db)
    await ack.refresh_from_db()
    assert ack.state == OutboundState.SENT
    assert "is delayed: 4.4.1" in (await TicketEvent.get(kind=EventKind.NOTE)).body


async def test_a_bounce_of_mail_that_is_not_ours_is_only_recorded(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    dovecot.append(delivery_report("<someone-else@example.com>", "5.1.1", "550 no"), folder=folder)
    stats = await poll_once(imap_db)
    assert stats.process.outcomes == {"ignored_bounce": 1}
    assert await TicketEvent.all().count() == 0


def _plain_bounce(to: str) -> bytes:
    """A bounce in plain text, as qmail sends it: no delivery-status part, nothing quoted."""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        f"To: {to}\r\n"
        "Subject: failure notice\r\n"
        "Message-ID: <qmail-1@mx.example.net>\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at mx.example.net.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
    ).encode()


async def test_our_envelope_sender_carries_a_signed_tag_of_each_email(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    ack = await _acknowledged_report(imap_db, dovecot, folder)
    [sent] = [m for m in sink.messages if "sam@example.net" in m.rcpt_tos]
    hex_id = ack.message_id.removeprefix("<intake.").split("@")[0]
    assert sent.mail_from == ack.sender
    assert sent.mail_from.startswith(f"info+b-{hex_id}-") and sent.mail_from.endswith(
        "@example.org"
    )
    assert sent.parsed()["From"].addresses[0].addr_spec == "info@example.org"  # type: ignore[attr-defined]


async def test_a_bounce_that_quotes_nothing_is_matched_by_its_envelope_address(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    ack = await _acknowledged_report(imap_db, dovecot, folder)
    forged = ack.sender.rsplit("-", 1)[0] + "-aaaaaaaaaa@example.org"
    sent_before = len(sink.messages)

    dovecot.append(_plain_bounce(forged), folder=folder)  # a made-up signature: matches nothing
    dovecot.append(_plain_bounce(ack.sender), folder=folder)
    stats = await poll_once(imap_db)

    assert stats.process.outcomes == {"ignored_bounce": 2}  # neither becomes a case
    assert len(sink.messages) == sent_before
    await ack.refresh_from_db()
    assert ack.state == OutboundState.BOUNCED
    notes = await TicketEvent.filter(ticket_id=ack.ticket_id, kind=EventKind.NOTE).values_list(
        "body", flat=True
    )
    assert [n for n in notes if "could not be delivered" in n and "sam@example.net" in n]
    reasons = await InboundMessage.filter(outcome="ignored_bounce").values_list("reason", flat=True)
    assert sum("bounce of outbound" in reason for reason in reasons) == 1


async def test_without_verp_the_envelope_sender_is_the_plain_address(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    plain = imap_db.model_copy(
        update={"outbound": imap_db.outbound.model_copy(update={"verp": False})}
    )
    dovecot.append(make_mail(), folder=folder)
    await poll_once(plain)
    assert set(await OutboundMessage.all().values_list("sender", flat=True)) == {"info@example.org"}


async def test_a_server_that_refuses_verp_senders_gets_the_plain_address_and_nothing_stalls(
    imap_db: Settings, dovecot: Dovecot, folder: str, caplog: pytest.LogCaptureFixture
) -> None:
    with SmtpSink(port=free_port(), plain_senders_only=True) as strict:
        settings = imap_db.model_copy(
            update={"outbound": imap_db.outbound.model_copy(update={"port": strict.port})}
        )
        dovecot.append(make_mail(), folder=folder)
        with caplog.at_level(logging.WARNING, logger="intake.deliver"):
            stats = await poll_once(settings)
        assert (stats.deliver.sent, stats.deliver.deferred) == (2, 0)
        assert {m.mail_from for m in strict.messages} == {"info@example.org"}
    assert len([r for r in caplog.records if "refuses VERP envelope senders" in r.message]) == 1


async def test_mail_to_a_bounce_address_is_never_a_case_whatever_it_looks_like(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    """An autoresponder that answers the envelope sender, with nothing that marks it as a
    machine: the address alone says so. It is noted on the case, and the email stays sent."""
    ack = await _acknowledged_report(imap_db, dovecot, folder)
    sent_before = len(sink.messages)
    human_looking = (
        "From: Kim Example <kim@example.net>\r\n"
        f"To: {ack.sender}\r\n"
        "Subject: Thanks for your message\r\n"
        "Message-ID: <ooo-1@example.net>\r\n"
        "\r\n"
        "I am away until Monday and will read your message then.\r\n"
    ).encode()
    dovecot.append(human_looking, folder=folder)
    stats = await poll_once(imap_db)
    assert stats.process.outcomes == {"ignored_bounce": 1}
    assert len(sink.messages) == sent_before
    await ack.refresh_from_db()
    assert ack.state == OutboundState.SENT
    [row] = await InboundMessage.filter(message_id="<ooo-1@example.net>")
    assert row.reason.startswith("sent to our bounce (VERP) address")
