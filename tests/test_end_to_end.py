"""The whole road on real servers: Dovecot in, aiosmtpd out, SQLite in between."""

from __future__ import annotations

from email import message_from_bytes, policy

from intake.runtime.cycle import poll_once
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, OutboundMessage, OutboundState, Ticket, TicketEvent
from tests.servers import Dovecot, SmtpSink
from tests.support import make_mail


async def test_a_report_becomes_an_acknowledged_routed_case(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    dovecot.append(
        make_mail(
            subject="The moderator insulted me",
            body="In the forum thread about releases, the moderator called me an idiot.",
            message_id="<first-report@example.net>",
            attachments=[("screenshot.png", "image/png", b"\x89PNG fake image bytes" * 50)],
        ),
        folder=folder,
    )

    stats = await poll_once(imap_db)

    assert stats.fetch.stored == 1
    assert stats.process.outcomes == {"ticket_created": 1}
    ticket = await Ticket.get().prefetch_related("assignee")
    assert ticket.ref.startswith("COC-")
    assert ticket.reporter_email == "sam@example.net"
    assert ticket.assignee is not None

    sent = sink.wait_for(2)
    by_recipient = {tuple(m.rcpt_tos): m.parsed() for m in sent}
    ack = by_recipient[("sam@example.net",)]
    notice = by_recipient[(ticket.assignee.email,)]

    assert ack["From"] == "Example Code of Conduct Team <info@example.org>"
    assert ack["Subject"] == f"[{ticket.ref}] We have received your message"
    assert ack["In-Reply-To"] == "<first-report@example.net>"
    assert "<first-report@example.net>" in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    ack_text = ack.get_content()
    assert ticket.ref in ack_text
    assert "If someone is in immediate danger, call 112." in ack_text
    assert ticket.assignee.name in ack_text
    assert "Retaliation" in ack_text
    assert "moderator" not in ack_text.lower() and "moderator" not in ack["Subject"].lower()

    assert notice["Subject"] == f"[{ticket.ref}] New case assigned to you"
    notice_text = notice.get_content()
    assert "the moderator called me an idiot" in notice_text
    assert "screenshot.png" in notice_text

    stored_ids = set(await OutboundMessage.all().values_list("message_id", flat=True))
    assert {ack["Message-ID"], notice["Message-ID"]} == stored_ids
    assert await OutboundMessage.filter(state=OutboundState.SENT).count() == 2

    assert dovecot.uids(folder) == []
    processed = dovecot.fetch_all(f"{folder}/Processed")
    assert len(processed) == 1
    assert message_from_bytes(processed[0], policy=policy.default)["Message-ID"] == (
        "<first-report@example.net>"
    )
    inbound = await InboundMessage.get()
    assert inbound.raw_bytes == processed[0]
    assert inbound.outcome == "ticket_created"
    assert await TicketEvent.filter(ticket=ticket).count() == 3
