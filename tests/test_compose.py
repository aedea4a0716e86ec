"""Outbound composition: nothing from inbound mail can reach a header or a template's logic."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from jinja2 import UndefinedError

from intake.engine.compose import Recipient, render
from intake.mail.mime import serialise
from intake.mail.sanitize import display_filename, header_text
from intake.runtime.cycle import poll_once
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import EventKind, OutboundMessage, Ticket, TicketEvent
from tests.servers import Dovecot, SmtpSink
from tests.support import REPO, make_mail


def test_an_undefined_template_variable_is_an_error() -> None:
    with pytest.raises(UndefinedError):
        render(REPO / "templates", TemplateName.ACKNOWLEDGEMENT, {"ref": "COC-2026-0001"})


def test_every_template_has_a_subject_and_a_text_block() -> None:
    templates = sorted((REPO / "templates").glob("*.j2"))
    assert {template.name for template in templates} == {name.file_name for name in TemplateName}
    for template in templates:
        source = template.read_text()
        assert "{% block subject %}" in source and "{% block text %}" in source, template.name


def test_header_text_removes_line_breaks_and_controls() -> None:
    assert header_text("Evil\r\nBcc: victim@example.com") == "Evil Bcc: victim@example.com"
    assert "\n" not in header_text("a\u2028b\x00c")


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("a\x00b.txt", "ab.txt"),
        ("", "attachment"),
    ],
)
def test_attachment_names_are_neutralised_for_display(given: str, shown: str) -> None:
    assert display_filename(given) == shown


def test_a_very_long_attachment_name_is_shortened_keeping_its_extension() -> None:
    shown = display_filename("x" * 500 + ".pdf")
    assert len(shown) <= 120 and shown.endswith(".pdf")


async def test_hostile_sender_names_and_template_syntax_stay_inert(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    hostile = (
        b"From: =?utf-8?q?Mallory_=0D=0ABcc:_victim@example.com?= <mallory@example.net>\r\n"
        b"To: info@example.org\r\n"
        b"Subject: {{ organisation.address }} {% for x in range(3) %}loop{% endfor %}\r\n"
        b"Message-ID: <hostile@example.net>\r\n"
        b"\r\n"
        b"{{ 7 * 7 }} and {% raw %}{% endraw %}\r\n"
    )
    dovecot.append(hostile, folder=folder)
    await poll_once(imap_db)
    sent = sink.wait_for(2)
    ticket = await Ticket.get()
    assert ticket.subject.startswith("{{ organisation.address }}")
    for captured in sent:
        assert "victim@example.com" not in captured.rcpt_tos
        headers = captured.data.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nBcc:" not in headers and b"\nBcc:" not in headers
    notice = next(m for m in sent if m.rcpt_tos != ["mallory@example.net"]).parsed()
    text = notice.get_content()
    assert "{{ 7 * 7 }}" in text and "49" not in text
    assert "loop" not in notice["Subject"]


async def test_the_acknowledgement_never_echoes_the_report(
    imap_db: Settings, dovecot: Dovecot, sink: SmtpSink, folder: str
) -> None:
    dovecot.append(
        make_mail(subject="Jordan threatened me", body="Jordan wrote that they know my address."),
        folder=folder,
    )
    await poll_once(imap_db)
    row = await OutboundMessage.get(kind="acknowledgement")
    ack = message_from_bytes(row.raw_bytes, policy=policy.default)
    assert "Jordan" not in str(ack["Subject"])
    assert "Jordan" not in ack.get_content()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII text.\nTwo lines.\n",
        "Grüße aus Köln — ünïcödé, 日本語\n",
        "x" * 2000 + "\n",  # too long for a 7bit line
    ],
)
def test_serialised_mail_parses_back_to_the_same_text(text: str) -> None:
    raw = serialise(
        [
            ("From", Recipient("info@example.org", "Équipe Code de conduite").header()),
            ("To", Recipient("sam@example.net", 'Sam "the" Reporter, Jr.').header()),
            ("Subject", "[COC-2026-0001] Nous avons bien reçu votre message"),
            ("Message-ID", "<intake.1@example.org>"),
        ],
        text,
        None,
    )
    assert raw.isascii()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content() == text  # type: ignore[attr-defined]
    assert parsed["To"].addresses[0].display_name == 'Sam "the" Reporter, Jr.'
    assert parsed["To"].addresses[0].addr_spec == "sam@example.net"
    assert parsed["From"].addresses[0].display_name == "Équipe Code de conduite"
    assert parsed["MIME-Version"] == "1.0"
    assert not parsed.defects


def test_serialised_mail_with_an_html_alternative() -> None:
    raw = serialise([("Subject", "x")], "Text part\n", "<p>HTML part — é</p>")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None and plain.get_content() == "Text part\n"  # type: ignore[attr-defined]
    assert html is not None and "HTML part — é" in html.get_content()  # type: ignore[attr-defined]
    assert not parsed.defects


async def test_inbound_html_is_sanitised_before_it_is_stored(
    imap_db: Settings, dovecot: Dovecot, folder: str
) -> None:
    html = (
        '<p onclick="steal()">He said <b>this</b>.<script>alert(1)</script>'
        '<img src="https://tracker.example/pixel.png"><a href="javascript:evil()">x</a></p>'
    )
    dovecot.append(make_mail(body="He said this.", html=html), folder=folder)
    await poll_once(imap_db)
    stored = await TicketEvent.get(kind=EventKind.INBOUND)
    assert "<b>this</b>" in stored.html
    for forbidden in ("onclick", "<script", "alert(1)", "<img", "tracker.example", "javascript:"):
        assert forbidden not in stored.html
