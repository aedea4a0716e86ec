"""Limits: what a case keeps of a message. The raw message is always stored whole."""

from __future__ import annotations

from pathlib import Path

from intake.runtime.cycle import poll_once, running
from intake.store.models import Attachment, EventKind, InboundMessage, OutboundMessage, TicketEvent
from tests.support import base_settings, make_mail, settings_from


def _settings(tmp_path: Path, **limits: object):  # type: ignore[no-untyped-def]
    data = base_settings(tmp_path)
    data["limits"] = limits
    (tmp_path / "mail" / "new").mkdir(parents=True)
    return settings_from(tmp_path, data)


async def test_attachments_over_the_limits_are_noted_not_kept(tmp_path: Path) -> None:
    settings = _settings(tmp_path, max_attachments=2, max_attachment_mb=0.01)
    raw = make_mail(
        attachments=[
            ("small.txt", "text/plain", b"a" * 100),
            ("big.bin", "application/octet-stream", b"b" * 20_000),
            ("third.txt", "text/plain", b"c" * 100),
        ]
    )
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(raw)
    async with running(settings):
        await poll_once(settings)
        kept = await Attachment.all().values_list("filename", flat=True)
        assert kept == ["small.txt"]
        notes = await TicketEvent.filter(kind=EventKind.NOTE).values_list("body", flat=True)
        assert any("big.bin" in note and "larger than 0.01 MB" in note for note in notes)
        assert any("third.txt" in note and "more than 2 attachments" in note for note in notes)
        notice = await OutboundMessage.get(kind="assignment")
        assert b"NOT KEPT" in notice.raw_bytes
        assert (await InboundMessage.get()).raw_bytes == raw  # the original, whole


async def test_a_message_over_the_size_limit_is_read_for_its_headers_only(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, max_message_mb=0.05)
    raw = make_mail(
        subject="Big evidence",
        body="the words",
        attachments=[("video.bin", "application/octet-stream", b"v" * 100_000)],
    )
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(raw)
    async with running(settings):
        stats = await poll_once(settings)
        assert stats.process.outcomes == {"ticket_created": 1}
        assert await Attachment.all().count() == 0
        [body] = await TicketEvent.filter(kind=EventKind.INBOUND).values_list("body", flat=True)
        assert "over the limit" in body and "intake inbound show" in body
        assert "the words" not in body
        assert await OutboundMessage.filter(kind="acknowledgement").count() == 1
        assert (await InboundMessage.get()).raw_bytes == raw


async def test_a_parse_over_its_time_budget_is_stopped_and_retried_later(
    tmp_path: Path,
) -> None:
    # A budget no worker can meet (starting one alone takes far longer): every message in the
    # worker batch runs over, is stopped, and is rescheduled; nothing is lost or half made.
    settings = _settings(tmp_path, parse_seconds=0.001)
    for n in range(5):
        (tmp_path / "mail" / "new" / f"{n}.eml").write_bytes(make_mail(body=f"report {n}"))
    async with running(settings):
        stats = await poll_once(settings)
        assert stats.process.outcomes == {"failed": 5}
        rows = await InboundMessage.all().values_list("state", "attempts", "last_error")
        assert all(state == "pending" and attempts == 1 for state, attempts, _ in rows)
        assert all("took more than 0.001 s" in (error or "") for _, _, error in rows)
        assert await OutboundMessage.all().count() == 0
