"""Conversations by email on the real servers: a Mailroom delivers mail to the intake mailbox,
runs one poll and returns what was sent; replies are written as a mail program writes them."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from intake.runtime.cycle import poll_once
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, OutboundMessage, Ticket
from tests.servers import Dovecot, SmtpSink
from tests.support import make_mail

REPORT_TEXT = "In the forum thread about releases, Max called me an idiot twice."


class Mailroom:
    """Drives one conversation: mail in through Dovecot, one poll, mail out through the sink."""

    def __init__(self, settings: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str) -> None:
        self.settings, self.dovecot, self.sink, self.folder = settings, dovecot, sink, folder
        self.seen = 0

    async def send(self, raw: bytes) -> list[EmailMessage]:
        """Deliver `raw` to the intake mailbox, run one poll; returns the emails it sent."""
        self.dovecot.append(raw, folder=self.folder)
        await poll_once(self.settings)
        queued = await OutboundMessage.all().count()
        sent = [m.parsed() for m in self.sink.wait_for(queued)][self.seen :]
        self.seen = queued
        return sent

    async def last_outcome(self) -> InboundMessage:
        return await InboundMessage.all().order_by("-id").first().prefetch_related("ticket")  # type: ignore[union-attr]


def reply_to(message: EmailMessage) -> str:
    return getaddresses([str(message["Reply-To"])])[0][1]


def door(message: EmailMessage) -> str:
    """The reporter door an email to a team member names in its first line."""
    match = re.search(r"write to (\S+@\S+) or start", message.get_content())
    assert match is not None, "no reporter door in this email"
    return match.group(1)


def to_only(sent: list[EmailMessage], address: str) -> EmailMessage:
    [message] = [m for m in sent if address in str(m["To"])]
    return message


def reply(
    to_message: EmailMessage, sender: str, body: str, *, to: str | None = None, **extra: Any
) -> bytes:
    """A reply as a mail program writes it: to the Reply-To, threaded, quoting the original."""
    quoted = "\n".join(f"> {line}" for line in to_message.get_content().splitlines())
    return make_mail(
        sender=sender,
        to=to or reply_to(to_message),
        subject=f"Re: {to_message['Subject']}",
        body=f"{body}\n\nOn Mon, 16 Nov 2026 at 10:00, Intake wrote:\n{quoted}\n",
        headers={
            "In-Reply-To": str(to_message["Message-ID"]),
            "References": str(to_message["Message-ID"]),
            **extra.pop("headers", {}),
        },
        **extra,
    )


async def open_case(mailroom: Mailroom) -> tuple[Ticket, EmailMessage, EmailMessage]:
    """A report from Sam: returns the case, the acknowledgement and the assignee's notice."""
    sent = await mailroom.send(
        make_mail(
            sender="Sam Reporter <sam@example.net>",
            subject="Max insulted me",
            body=REPORT_TEXT,
            message_id="<report-1@example.net>",
        )
    )
    ticket = await Ticket.get().prefetch_related("assignee")
    assert ticket.assignee is not None
    return ticket, to_only(sent, "sam@example.net"), to_only(sent, ticket.assignee.email)
