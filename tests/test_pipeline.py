"""Processing: one transaction per message; failures roll back, retry with backoff, then park."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from intake.conduct.handlers import registry
from intake.engine.pipeline import process_pending
from intake.runtime.cycle import running
from intake.store.models import (
    InboundMessage,
    InboundState,
    OutboundMessage,
    Ticket,
    TicketSequence,
)
from intake.transport.fetch import fetch_once
from tests.support import REPO, base_settings, make_mail, settings_from


def _settings_with_templates(tmp_path: Path, templates: Path):  # type: ignore[no-untyped-def]
    data = base_settings(tmp_path)
    data["paths"]["templates"] = str(templates)
    data["processing"] = {"max_attempts": 2, "retry_after": "1m"}
    (tmp_path / "mail" / "new").mkdir(parents=True)
    return settings_from(tmp_path, data)


async def test_a_failing_message_rolls_back_retries_then_parks_and_the_rest_keep_moving(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken-templates"  # an operator's edit that names a missing variable
    broken.mkdir()
    for template in (REPO / "templates").glob("*.j2"):
        (broken / template.name).write_text(template.read_text())
    (broken / "acknowledgement.j2").write_text(
        "{% block subject %}{{ no_such_variable }}{% endblock %}{% block text %}x{% endblock %}"
    )
    settings = _settings_with_templates(tmp_path, broken)
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(make_mail())
    (tmp_path / "mail" / "new" / "2.eml").write_bytes(
        make_mail(headers={"Auto-Submitted": "auto-replied"})
    )
    async with running(settings):
        await fetch_once(settings)
        first = await process_pending(settings, registry(settings))
        assert first.outcomes == {"failed": 1, "ignored_auto_reply": 1}

        report = await InboundMessage.get(source_ref="1.eml")
        assert report.state == InboundState.PENDING
        assert report.attempts == 1
        assert report.last_error is not None and "UndefinedError" in report.last_error
        assert report.next_attempt_at is not None and report.next_attempt_at > datetime.now(UTC)
        # The handler's writes were rolled back with the failure: no half-made case.
        assert await Ticket.all().count() == 0
        assert await OutboundMessage.all().count() == 0
        assert (await TicketSequence.all().values_list("last_number", flat=True)) in ([], [0])

        not_due_yet = await process_pending(settings, registry(settings))  # backoff
        assert not_due_yet.processed == 0
        await InboundMessage.filter(id=report.id).update(
            next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)
        )
        await process_pending(settings, registry(settings))
        await report.refresh_from_db()
        assert report.state == InboundState.FAILED
        assert report.outcome == "failed"
        assert report.attempts == 2
        assert "parked" in report.reason
        assert report.raw_bytes == (tmp_path / "mail" / "cur" / "1.eml:2,S").read_bytes()


async def test_without_a_usable_sender_the_case_opens_but_nobody_is_answered(
    tmp_path: Path,
) -> None:
    settings = _settings_with_templates(tmp_path, Path(__file__).parents[1] / "templates")
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(
        b"To: info@example.org\r\nSubject: anonymous\r\n\r\nSomeone is being harassed.\r\n"
    )
    async with running(settings):
        await fetch_once(settings)
        stats = await process_pending(settings, registry(settings))
        assert stats.outcomes == {"ticket_created": 1}
        ticket = await Ticket.get()
        assert ticket.reporter_email == ""
        kinds = await OutboundMessage.all().values_list("kind", flat=True)
        assert kinds == ["assignment"]
        inbound = await InboundMessage.get()
        assert "not acknowledged" in inbound.reason
