"""A reply to a digest: recorded and answered by nobody. A digest belongs to no case, and a reply
to it (a member's, or their autoresponder's) must not become a report carrying the overview."""

from __future__ import annotations

from intake.engine.contract import HandlerContext, HandlerResult
from intake.store.models import Outcome


async def handle_digest_reply(context: HandlerContext) -> HandlerResult:
    reason = f"{context.verdict.reason}: digests are not read; reply to an email about the case"
    return HandlerResult(outcome=Outcome.IGNORED_DIGEST_REPLY, reason=reason)
