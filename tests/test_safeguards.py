"""Safeguards: never answer ourselves, the team or a looping machine; odd input never jams."""

from __future__ import annotations

import json
from pathlib import Path

from intake.runtime.cycle import poll_once, running
from intake.settings.schema import Settings
from intake.store.models import InboundMessage, OutboundMessage, OutboundState, Ticket
from intake.transport.delivery import deliver_once
from tests.servers import SmtpSink
from tests.support import base_settings, intake, make_mail, settings_from, write_settings


def _maildir_settings(tmp_path: Path) -> Settings:
    (tmp_path / "mail" / "new").mkdir(parents=True)
    return settings_from(tmp_path, base_settings(tmp_path))


def _deliver(tmp_path: Path, name: str, raw: bytes) -> None:
    (tmp_path / "mail" / "new" / name).write_bytes(raw)


async def _acknowledgements() -> list[list[str]]:
    rows = await OutboundMessage.filter(kind="acknowledgement").values_list("recipients", flat=True)
    return [list(recipients) for recipients in rows]  # type: ignore[call-overload]


async def test_a_reply_to_our_own_automatic_mail_opens_a_case_but_is_not_answered(
    tmp_path: Path,
) -> None:
    settings = _maildir_settings(tmp_path)
    _deliver(
        tmp_path,
        "1.eml",
        make_mail(
            subject="Re: [COC-2026-0001] We have received your message",
            headers={"In-Reply-To": "<intake.0123abcd@example.org>"},
        ),
    )
    async with running(settings):
        await poll_once(settings)
        assert await Ticket.all().count() == 1
        assert await _acknowledgements() == []
        inbound = await InboundMessage.get()
        assert "replies to our own automatic mail" in inbound.reason


async def test_acknowledgements_per_sender_are_capped_per_day(tmp_path: Path) -> None:
    settings = _maildir_settings(tmp_path)
    for n in range(5):
        _deliver(tmp_path, f"{n}.eml", make_mail(body=f"Report number {n}."))
    async with running(settings):
        await poll_once(settings)
        assert await Ticket.all().count() == 5  # every report is still a case
        assert len(await _acknowledgements()) == 3  # the default cap
        capped = await InboundMessage.filter(reason__contains="limit 3").count()
        assert capped == 2
        notices = await OutboundMessage.filter(kind="rate_notice").values_list(
            "recipients", flat=True
        )
        assert notices == [["sam@example.net"]]  # told once, then nothing more today


async def test_our_own_or_a_team_reply_to_address_is_never_answered(tmp_path: Path) -> None:
    settings = _maildir_settings(tmp_path)
    _deliver(tmp_path, "1.eml", make_mail(headers={"Reply-To": "info@example.org"}))
    _deliver(
        tmp_path,
        "2.eml",
        make_mail(sender="x@example.net", headers={"Reply-To": "bob@example.org"}),
    )
    _deliver(  # one of our own reply addresses: answering it would mail ourselves
        tmp_path,
        "3.eml",
        make_mail(
            sender="y@example.net",
            headers={"Reply-To": "info+1-2-abcdefghijklmnop@example.org"},
        ),
    )
    async with running(settings):
        await poll_once(settings)
        assert await Ticket.all().count() == 3
        assert await _acknowledgements() == []


async def test_a_control_character_in_the_sender_is_not_answered(tmp_path: Path) -> None:
    settings = _maildir_settings(tmp_path)
    _deliver(
        tmp_path,
        "1.eml",
        b"From: <a\x01b@example.org>\r\nTo: info@example.org\r\nSubject: hi\r\n\r\nReport.\r\n",
    )
    async with running(settings):
        await poll_once(settings)
        assert await Ticket.all().count() == 1
        assert await _acknowledgements() == []


async def test_an_unsendable_row_fails_alone_and_the_queue_moves_on(
    imap_db: Settings, sink: SmtpSink
) -> None:
    async def queued(recipient: str, name: str) -> OutboundMessage:
        return await OutboundMessage.create(
            kind="acknowledgement",
            sender="info@example.org",
            recipients=[recipient],
            message_id=f"<intake.{name}@example.org>",
            subject="x",
            raw_bytes=b"Subject: x\n\nx\n",
        )

    bad = await queued("a\x01b@example.org", "bad")
    good = await queued("sam@example.net", "good")
    stats = await deliver_once(imap_db)
    assert (stats.sent, stats.failed) == (1, 1)
    await bad.refresh_from_db()
    await good.refresh_from_db()
    assert bad.state == OutboundState.FAILED and good.state == OutboundState.SENT


async def test_a_file_name_used_twice_in_the_maildir_loses_nothing(tmp_path: Path) -> None:
    settings = _maildir_settings(tmp_path)
    _deliver(tmp_path, "same.eml", make_mail(body="first"))
    async with running(settings):
        await poll_once(settings)
        _deliver(tmp_path, "same.eml", make_mail(body="second, a different message"))
        await poll_once(settings)
        assert await InboundMessage.all().count() == 2
    assert len(list((tmp_path / "mail" / "cur").iterdir())) == 2


def test_listings_show_markup_in_inbound_text_as_text(tmp_path: Path) -> None:
    (tmp_path / "mail" / "new").mkdir(parents=True)
    config = write_settings(tmp_path, base_settings(tmp_path))
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(
        make_mail(subject="Undeliverable: [/x] [bold]loud[/bold]")
    )
    intake("poll", config=config)
    table = intake("inbound", config=config).stdout
    assert "[/x]" in table
    rows = json.loads(intake("inbound", "--json", config=config).stdout)
    assert rows[0]["outcome"].startswith("ignored_")
