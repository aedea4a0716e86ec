"""Handlers for the screen's machine mail: recorded with its reason and never answered, since
answering machines is how mail loops start.

A bounce (delivery status notification) that reports on an email of ours marks that email
bounced with the status and reason, and its case gets an internal note. Our emails are found by
their Message-ID (`<intake.HEX@our-domain>`), which a DSN quotes in its returned headers or
message. Bounces of mail that is not ours are recorded and ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from intake.engine.compose import our_message_ids_in
from intake.engine.contract import Handler, HandlerContext, HandlerResult
from intake.engine.screen import MachineMail
from intake.engine.verp import bounced_message_ids
from intake.mail.sanitize import db_text, header_text
from intake.settings.secrets import signing_key
from intake.store.models import EventKind, OutboundMessage, OutboundState, Outcome, TicketEvent

IGNORED = {
    MachineMail.AUTO_REPLY: Outcome.IGNORED_AUTO_REPLY,
    MachineMail.BULK: Outcome.IGNORED_BULK,
    MachineMail.OWN_ADDRESS: Outcome.IGNORED_OWN_ADDRESS,
}


async def handle_machine_mail(context: HandlerContext) -> HandlerResult:
    kind = MachineMail(context.verdict.kind)
    return HandlerResult(outcome=IGNORED[kind], reason=context.verdict.reason)


_STATUS = re.compile(rb"(?im)^Status:[ \t]*([245]\.\d{1,3}\.\d{1,3})")
# A bounce in plain text (qmail's, older MTAs'), without a delivery-status part.
_FAILURE = re.compile(
    rb"(?i)undeliver|delivery (?:status notification|failure|has failed)|failure notice|"
    rb"returned mail|could not be delivered|permanent(?:ly)? (?:error|fatal)|mailbox unavailable"
)
_DIAGNOSTIC = re.compile(rb"(?im)^Diagnostic-Code:[ \t]*([^\r\n]+)")


async def handle_bounce(context: HandlerContext) -> HandlerResult:
    reason = context.verdict.reason
    raw, settings = context.raw, context.settings
    ids = {
        *our_message_ids_in(raw, settings),
        *bounced_message_ids(raw, settings, signing_key(settings)),
    }
    found = await OutboundMessage.filter(message_id__in=ids).prefetch_related("ticket")
    # A purged case's email is nobody's business any more: its bounce is mail about no case.
    bounced = [row for row in found if row.ticket is None or row.ticket.purged_at is None]
    if not bounced:
        return HandlerResult(outcome=Outcome.IGNORED_BOUNCE, reason=reason)
    status_match = _STATUS.search(raw)
    if status_match:
        status = status_match.group(1).decode("ascii")
    else:  # no delivery-status part: a plain-text bounce, or a machine's answer of some other kind
        status = "5.0.0" if _FAILURE.search(raw[:20000]) else "4.0.0"
    diagnostic = _DIAGNOSTIC.search(raw)
    detail = header_text(diagnostic.group(1).decode("utf-8", "replace"), 300) if diagnostic else ""
    permanent = status.startswith("5")
    for row in bounced:
        summary = f"{status} {detail}".strip()
        if permanent:
            row.state = OutboundState.BOUNCED
            row.last_error = db_text(f"bounced: {summary}")
            await row.save(update_fields=["state", "last_error"])
        if row.ticket is not None:
            what = "could not be delivered" if permanent else "is delayed"
            await TicketEvent.create(
                ticket=row.ticket,
                kind=EventKind.NOTE,
                author=context.settings.organisation.address,
                body=f"The {row.kind} to {', '.join(row.recipients)} {what}: {summary}",
                internal=True,
                inbound=context.inbound,
            )
    refs = ", ".join(f"outbound {row.id}" for row in bounced)
    kind = "bounce" if permanent else "delay notice"
    return HandlerResult(
        outcome=Outcome.IGNORED_BOUNCE,
        reason=f"{reason}; {kind} of {refs}: {status} {detail}".strip(),
        ticket=bounced[0].ticket,
    )


MACHINE_HANDLERS: Mapping[StrEnum, Handler] = {
    **{kind: handle_machine_mail for kind in IGNORED},
    MachineMail.BOUNCE: handle_bounce,
}
