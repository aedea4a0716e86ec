"""Autoresponders in the loop: three machines that answer every email we send them, through a
real Dovecot and a real SMTP server. Whatever headers they set, the exchange dies out."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from intake.runtime.cycle import poll_once
from intake.settings.schema import Settings
from intake.store.models import OutboundMessage, Ticket
from tests.servers import CapturedMessage, Dovecot, SmtpSink
from tests.support import make_mail

POLITE = "polite@example.net"  # sets Auto-Submitted, as RFC 3834 asks
THREADED = "threaded@example.net"  # no headers, but answers In-Reply-To our Message-ID
CARELESS = "careless@example.net"  # no headers, no references: a fresh email every time
CYCLES = 10


def _auto_reply(to_us: CapturedMessage) -> bytes | None:
    """What the autoresponder at the recipient sends back, or None if it is not one of ours."""
    sent = BytesParser(policy=policy.default).parsebytes(to_us.data)
    responder = to_us.rcpt_tos[0]
    subject = f"Re: {sent['Subject']}"
    if responder == POLITE:
        return make_mail(sender=POLITE, subject=subject, headers={"Auto-Submitted": "auto-replied"})
    if responder == THREADED:
        return make_mail(
            sender=THREADED, subject=subject, headers={"In-Reply-To": sent["Message-ID"]}
        )
    if responder == CARELESS:
        return make_mail(sender=CARELESS, subject="Thank you for your email", body="We got it.")
    return None


async def test_autoresponders_never_keep_a_loop_going(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    for responder in (POLITE, THREADED, CARELESS):
        dovecot.append(make_mail(sender=responder, body="An opening report."), folder=folder)

    answered = 0
    quiet_cycles = 0
    for _ in range(CYCLES):
        await poll_once(imap_db)
        replies = [_auto_reply(message) for message in sink.messages[answered:]]
        answered = len(sink.messages)
        replies_sent = [reply for reply in replies if reply is not None]
        dovecot.append_many(replies_sent, folder=folder)
        quiet_cycles = quiet_cycles + 1 if not replies_sent else 0

    assert quiet_cycles >= 3, "the exchange died out and stayed quiet"
    acks = await OutboundMessage.filter(kind="acknowledgement").values_list("recipients", flat=True)
    acked = [recipients[0] for recipients in acks]  # type: ignore[index]
    assert acked.count(POLITE) == 1  # its auto-replies are recognised and never answered
    assert acked.count(THREADED) == 1  # replies to our own mail are never answered
    assert acked.count(CARELESS) == imap_db.processing.acknowledgements_per_sender_per_day
    assert await OutboundMessage.filter(kind="rate_notice").count() == 1  # then silence
    # Every message from a person-looking sender is still a case for the team to see: the
    # acknowledged ones, the one that got the notice, and the answer to the notice.
    assert await Ticket.filter(reporter_email=CARELESS).count() == acked.count(CARELESS) + 2
