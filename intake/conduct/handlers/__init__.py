"""One module per kind of inbound mail the case rules give; each acts for its kind. `registry`
is what the runtime hands the engine: these handlers and the case rules that choose between them
(machine mail the engine screens and handles itself)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import partial

from intake.conduct.handlers.appeal import handle_appeal
from intake.conduct.handlers.followup import handle_followup
from intake.conduct.handlers.general import handle_general
from intake.conduct.handlers.notice_reply import handle_notice_reply
from intake.conduct.handlers.refused import handle_refused
from intake.conduct.handlers.report import handle_report
from intake.conduct.handlers.team_reply import handle_team_reply
from intake.conduct.kinds import MailKind
from intake.conduct.rules import RuleContext, decide
from intake.engine.contract import Handler, Registry
from intake.settings.schema import Settings

CASE_HANDLERS: Mapping[StrEnum, Handler] = {
    MailKind.FORGED: handle_refused,
    MailKind.EXCLUDED: handle_refused,
    MailKind.TEAM_REPLY: handle_team_reply,
    MailKind.FOLLOWUP: handle_followup,
    MailKind.NOTICE_REPLY: handle_notice_reply,
    MailKind.APPEAL: handle_appeal,
    MailKind.RETALIATION: handle_report,
    MailKind.GENERAL: handle_general,
    MailKind.REPORT: handle_report,
}


def registry(settings: Settings) -> Registry:
    return Registry(
        rules=partial(decide, context=RuleContext.of(settings)),
        handlers=CASE_HANDLERS,
    )
