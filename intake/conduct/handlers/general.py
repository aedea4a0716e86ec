"""Mail to the address that is not a report (sponsorship, invoices, press): recorded as a case
of kind `general`, passed to `[classification] general_contact` when one is set, and answered
once. Wording that reads as urgent makes it a report after all: a misjudged report must never
wait in a general inbox. A reply from its sender, or `#kind report`, brings in the member on duty.
"""

from __future__ import annotations

from intake.conduct.handlers.report import handle_report
from intake.conduct.mailing import mail_party
from intake.conduct.opening import open_case
from intake.conduct.parties import add_party
from intake.conduct.replies import why_not_answer
from intake.engine.contract import HandlerContext, HandlerResult
from intake.mail.phrases import find, places
from intake.mail.sanitize import header_text
from intake.settings.policy import CaseKind
from intake.settings.templates import TemplateName
from intake.store.models import Outcome, PartyRole


async def handle_general(context: HandlerContext) -> HandlerResult:
    settings, message = context.settings, context.message
    classification = settings.classification
    if find(classification.urgent_phrases, classification.urgent_where, places(message)):
        return await handle_report(context)
    not_answered, _ = await why_not_answer(context)
    case = await open_case(context, kind=CaseKind.GENERAL, acknowledged=not_answered is None)
    ticket, reporter, excluded = case.ticket, case.reporter, case.excluded
    reason = context.verdict.reason
    if excluded:
        reason += "; excluded: " + "; ".join(excluded)
    contact = classification.general_contact
    if contact is not None and not context.inbound.quiet:
        party = await add_party(ticket, PartyRole.OTHER, contact)
        await mail_party(
            settings,
            ticket,
            party,
            TemplateName.PARTY_MESSAGE,
            {"party_name": "", "text": f"Forwarded from {message.from_address}:\n\n{message.text}"},
            internal=True,
            auto_submitted="auto-generated",
        )
        reason += f"; passed to {contact}"
    elif contact is None:
        reason += "; recorded only (no general_contact)"
    if reporter is not None and not_answered is None:
        await mail_party(
            settings,
            ticket,
            reporter,
            TemplateName.GENERAL,
            {"reporter_name": header_text(reporter.name), "passed_to": contact or ""},
            internal=False,
            answering=context.answering,
        )
    elif not_answered:
        reason += f"; not answered: {not_answered}"
    return HandlerResult(outcome=Outcome.TICKET_CREATED, reason=reason, ticket=ticket)
