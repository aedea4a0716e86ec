"""A reply to Intake's own mail about no case (a digest, an alert): recorded and answered by
nobody. It must not become a report carrying the quoted notice, nor start a loop."""

from __future__ import annotations

from intake.engine.contract import HandlerContext, HandlerResult
from intake.store.models import Outcome


async def handle_notice_reply(context: HandlerContext) -> HandlerResult:
    reason = f"{context.verdict.reason}: not read; reply to an email about the case"
    return HandlerResult(outcome=Outcome.IGNORED_NOTICE_REPLY, reason=reason)
