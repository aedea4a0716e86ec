"""Which case, if any, an inbound message belongs to, and as which of its parties.

In this order: a signed reply token in a recipient header; else In-Reply-To or References naming
a Message-ID we stored (inbound or outbound); else a case reference in the subject. Only a valid
token proves who wrote; the other two find a case, and the message joins it only when its sender
is already a party to it. A token that fails its signature, or arrives from someone who is not its
party, is forged and the message never joins the case.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from intake.engine.tokens import ForgedToken, ReplyToken, decode, redact, tokens_in
from intake.mail.parse import ParsedMessage
from intake.settings.schema import Settings
from intake.settings.secrets import signing_key
from intake.store.models import InboundMessage, OutboundMessage, Party, PartyRole, Ticket
from intake.store.references import case_reference

RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


class Via(StrEnum):
    """How a message was linked to its case; only a token proves who wrote."""

    TOKEN = "reply token"
    MESSAGE_ID = "In-Reply-To/References"
    SUBJECT = "case reference in the subject"


@dataclass(frozen=True)
class CaseLink:
    """The case a message points at. `party` is the sender's party on it, when the sender is
    one; `forged` says why a token was refused (then the message must not join the case)."""

    ticket: Ticket | None
    via: Via
    party: Party | None = None
    forged: str | None = None
    # Sent to a team member's reporter door: what they wrote is for the reporter.
    door: bool = False
    # It answers mail of ours that is about no case (a digest, an alert): `ticket` is None.
    notice: bool = False


async def _party_for_sender(ticket: Ticket, sender: str) -> Party | None:
    """The sender's party on the case: the address matches, or the sender is its reporter."""
    if not sender:
        return None
    # An excluded party first: a member kept from the case stays refused under any role.
    party = await Party.filter(ticket=ticket, email=sender).order_by("-excluded", "id").first()
    if party is None and ticket.reporter_email.lower() == sender:
        party = await Party.filter(ticket=ticket, role=PartyRole.REPORTER).order_by("id").first()
    return party


async def _by_token(settings: Settings, message: ParsedMessage) -> CaseLink | None:
    candidates = [
        token
        for value in message.headers_named(*RECIPIENT_HEADERS)
        for token in tokens_in(settings, value)
    ]
    if not candidates:
        return None
    key = signing_key(settings)
    refused: CaseLink | None = None
    for candidate in dict.fromkeys(candidates):
        try:
            token = decode(key, candidate)
        except ForgedToken as exc:
            # The case it names, if any, gets a note: a reply under a stale or mangled address
            # must not vanish without a trace (nothing is appended, nobody is mailed).
            named = await Ticket.get_or_none(id=exc.token.ticket_id, purged_at__isnull=True)
            refused = refused or CaseLink(ticket=named, via=Via.TOKEN, forged=str(exc))
            continue
        if token is None:
            continue
        link = await _check_token(token, message.from_email, candidate)
        if link is not None and link.forged is None:
            return link
        refused = refused or link
    return refused


async def _check_token(token: ReplyToken, sender: str, text: str) -> CaseLink | None:
    """A token with a good signature still has to name a party of that case, and the message
    has to come from that party. A party that is gone was removed by a purge or an erasure (only
    we sign tokens): the message is new mail, never refused as forged."""
    party = await Party.get_or_none(id=token.party_id, ticket_id=token.ticket_id).prefetch_related(
        "ticket"
    )
    if party is None:
        return None
    ticket = party.ticket
    if token.door and party.role != PartyRole.TEAM:
        return CaseLink(
            ticket=ticket, via=Via.TOKEN, forged=f"reporter door {redact(text)} is not a member's"
        )
    matches = sender == party.email or (
        party.role == PartyRole.REPORTER and sender == ticket.reporter_email.lower()
    )
    if not matches:
        return CaseLink(
            ticket=ticket,
            via=Via.TOKEN,
            forged=f"the reply token of {party.email} ({party.role}) was used by"
            f" {sender or 'a message without a sender'}",
        )
    return CaseLink(ticket=ticket, via=Via.TOKEN, party=party, door=token.door)


async def _by_message_id(message: ParsedMessage) -> tuple[Ticket | None, bool]:
    """The case of the most recent stored message the reply names (In-Reply-To first); and,
    when it names none, whether it names an email of ours about no case (a digest, an alert)."""
    named = [*message.in_reply_to, *reversed(message.references)]
    if not named:
        return None, False
    known: dict[str, int] = {}
    notice = False
    for model in (OutboundMessage, InboundMessage):
        rows = await model.filter(message_id__in=named).values_list("message_id", "ticket_id")
        for message_id, ticket_id in rows:
            if ticket_id is not None:
                known.setdefault(str(message_id), int(ticket_id))
            elif model is OutboundMessage:
                notice = True
    for message_id in named:
        if message_id in known:
            return await Ticket.get(id=known[message_id]), False
    return None, notice


async def _by_subject(settings: Settings, message: ParsedMessage) -> Ticket | None:
    ref = case_reference(settings.organisation.ticket_prefix, message.subject)
    return await Ticket.get_or_none(ref=ref) if ref else None


async def link_case(settings: Settings, message: ParsedMessage) -> CaseLink | None:
    """The case the message points at, and the sender's party on it; None for a new matter."""
    link = await _by_token(settings, message)
    if link is not None:
        return link
    via = Via.MESSAGE_ID
    ticket, notice = await _by_message_id(message)
    if ticket is None:
        via, ticket = Via.SUBJECT, await _by_subject(settings, message)
    if ticket is not None and ticket.purged_at is not None:
        return None  # its content is gone: whatever this says is new to us
    if ticket is None:
        return CaseLink(ticket=None, via=Via.MESSAGE_ID, notice=True) if notice else None
    return CaseLink(
        ticket=ticket, via=via, party=await _party_for_sender(ticket, message.from_email)
    )
