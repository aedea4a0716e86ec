"""One module per kind of inbound mail; each decides and acts for its kind."""

from __future__ import annotations

from collections.abc import Mapping

from intake.conduct.handlers.appeal import handle_appeal
from intake.conduct.handlers.bounce import handle_bounce
from intake.conduct.handlers.followup import handle_followup
from intake.conduct.handlers.general import handle_general
from intake.conduct.handlers.machine import OUTCOMES, handle_machine_mail
from intake.conduct.handlers.refused import handle_refused
from intake.conduct.handlers.report import handle_report
from intake.conduct.handlers.team_reply import handle_team_reply
from intake.engine.classify import Kind
from intake.engine.contract import Handler

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
