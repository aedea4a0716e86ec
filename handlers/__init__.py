"""One module per kind of inbound mail; each decides and acts for its kind."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.appeal import handle_appeal
from handlers.base import Handler
from handlers.bounce import handle_bounce
from handlers.followup import handle_followup
from handlers.general import handle_general
from handlers.machine import OUTCOMES, handle_machine_mail
from handlers.refused import handle_refused
from handlers.report import handle_report
from handlers.team_reply import handle_team_reply
from intake.classify import Kind

HANDLERS: Mapping[str, Handler] = {
    **{kind: handle_machine_mail for kind in OUTCOMES},
    Kind.BOUNCE: handle_bounce,
    Kind.FORGED: handle_refused,
    Kind.EXCLUDED: handle_refused,
    Kind.TEAM_REPLY: handle_team_reply,
    Kind.FOLLOWUP: handle_followup,
    Kind.APPEAL: handle_appeal,
    Kind.RETALIATION: handle_report,
    Kind.GENERAL: handle_general,
    Kind.REPORT: handle_report,
}
