"""Email to the team leads when Intake needs a person (a login refused again and again)."""

from __future__ import annotations

from intake.engine.compose import Recipient, queue_email
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName


async def queue_alert(settings: Settings, job: str, error: str) -> None:
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
        },
        auto_submitted="auto-generated",
    )
