"""Mail that points at a case but must not join it: a forged reply token, or a team member the
case excludes. It is recorded (outcome and reason on the stored message, a note on the case when
the case is known) and nothing is sent to anyone, so a forger learns nothing."""

from __future__ import annotations

from intake.conduct.kinds import MailKind
from intake.conduct.notes import note
from intake.engine.contract import HandlerContext, HandlerResult
from intake.store.models import Outcome

OUTCOMES = {
    MailKind.FORGED: Outcome.REJECTED_FORGED_TOKEN,
    MailKind.EXCLUDED: Outcome.REJECTED_EXCLUDED,
}


async def handle_refused(context: HandlerContext) -> HandlerResult:
    outcome = OUTCOMES[MailKind(context.verdict.kind)]
    ticket = context.link.ticket if context.link else None
    if ticket is not None:
        await note(
            context.settings,
            ticket,
            f"A message was refused and not added ({outcome}): {context.verdict.reason}."
            f" It is stored as inbound {context.inbound.id}.",
        )
    return HandlerResult(outcome=outcome, reason=context.verdict.reason)
