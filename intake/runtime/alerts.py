"""Email to the team leads when Intake needs a person (a login refused again and again)."""

from __future__ import annotations

from intake.engine.compose import Recipient, queue_email
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.settings.types import format_duration


async def queue_alert(
    settings: Settings, job: str, error: str, *, token_refused: bool = False
) -> None:
    """`token_refused`: the OAuth2 provider refused the refresh token, which only a new
    `intake oauth login` mends (the email says so instead of "check the password")."""
    leads = settings.leads
    if not leads:
        return
    await queue_email(
        settings,
        template=TemplateName.ALERT,
        to=[Recipient(lead.email, lead.name) for lead in leads],
        context={
            "organisation": settings.organisation.model_dump(),
            "job": job,
            "error": error,
            "config": str(settings.source_file or "settings.toml"),
            "token_refused": token_refused,
            "repeat_every": format_duration(settings.alerts.repeat_every),
        },
        auto_submitted="auto-generated",
    )
