"""What inbound mail is, for the case rules and their handlers (the engine's screen names machine
mail: intake.engine.screen.MachineMail). A case's own kind is intake.settings.policy.CaseKind;
docs/ARCHITECTURE.md ("Words") lists the other meanings of "kind"."""

from __future__ import annotations

from enum import StrEnum

from intake.settings.policy import CaseKind


class MailKind(StrEnum):
    """The verdict of the case rules (intake.conduct.rules), one handler each."""

    FORGED = "forged_token"
    EXCLUDED = "excluded"
    TEAM_REPLY = "team_reply"
    FOLLOWUP = "followup"
    NOTICE_REPLY = "notice_reply"  # answers our mail about no case (a digest, an alert)
    APPEAL = CaseKind.APPEAL.value
    RETALIATION = CaseKind.RETALIATION.value
    GENERAL = CaseKind.GENERAL.value
    REPORT = CaseKind.REPORT.value
