"""Machine-generated mail (auto-replies, bulk) and mail from our own address (bounces have
handlers/bounce.py, which also matches them to our outbound mail).

Recorded with its reason and never answered: answering machines is how mail loops start.
"""

from __future__ import annotations

from intake.engine.classify import Kind
from intake.engine.contract import HandlerContext, HandlerResult
from intake.store.models import Outcome

OUTCOMES = {
    Kind.AUTO_REPLY: Outcome.IGNORED_AUTO_REPLY,
    Kind.BULK: Outcome.IGNORED_BULK,
    Kind.OWN_ADDRESS: Outcome.IGNORED_OWN_ADDRESS,
}


async def handle_machine_mail(context: HandlerContext) -> HandlerResult:
    return HandlerResult(outcome=OUTCOMES[context.verdict.kind], reason=context.verdict.reason)
