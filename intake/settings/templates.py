"""The email templates Intake renders, each named once here; `paths.templates` must hold them all.

A template's name is also the `kind` an outbound row records (`intake outbox` shows it).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from intake.errors import SettingsError


class TemplateName(StrEnum):
    """One member per file `templates/<name>.j2`."""

    ACKNOWLEDGEMENT = "acknowledgement"
    ASSIGNMENT = "assignment"
    RATE_NOTICE = "rate_notice"
    ALERT = "alert"
    RELAY = "relay"
    CASE_UPDATE = "case_update"
    TEAM_DISCUSSION = "team_discussion"
    COMMAND_RESULT = "command_result"
    HANDOVER = "handover"
    OUTCOME = "outcome"
    PARTY_MESSAGE = "party_message"
    REFERRAL = "referral"
    GENERAL = "general"
    APPEAL_ACKNOWLEDGEMENT = "appeal_acknowledgement"
    APPEAL_REFUSED = "appeal_refused"
    APPEAL_REFERENCE_NEEDED = "appeal_reference_needed"
    REMINDER = "reminder"
    DIGEST = "digest"

    @property
    def file_name(self) -> str:
        return f"{self.value}.j2"


def check_templates(directory: Path) -> None:
    """Missing templates are a start-up error, not a parked message per report."""
    for name in TemplateName:
        if not (directory / name.file_name).is_file():
            raise SettingsError(f"paths.templates: {directory / name.file_name} does not exist")
