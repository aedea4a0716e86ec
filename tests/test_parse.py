"""`parse_message` as a specification: what a stored message's bytes must turn into.

Messages are written out as bytes on purpose: the cases that matter (raw 8-bit headers, odd line
ends, broken MIME) are exactly the ones a message builder would refuse to produce.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from intake.mail.headers import Address, decode_words, message_id, raw_headers
from intake.mail.parse import ParsedMessage, parse_message
from tests.support import CORPORA, make_mail

STALWART = CORPORA / "stalwart-mail-parser" / "eml"


def mail(*header_lines: bytes, body: bytes = b"Hello.\n", end: bytes = b"\n") -> bytes:
    return end.join(header_lines) + end + end + body


def parse(*header_lines: bytes, body: bytes = b"Hello.\n") -> ParsedMessage:
    return parse_message(mail(*header_lines, body=body))


# --- raw 8-bit header bytes -------------------------------------------------------------------


def test_raw_utf8_bytes_in_subject_and_from_are_kept() -> None:
    message = parse(
        "From: Jörg Müller <joerg@example.net>".encode(),
        "Subject: Belästigung im Café ☕".encode(),
    )
    assert message.subject == "Belästigung im Café ☕"
    assert message.from_ == Address("Jörg Müller", "joerg@example.net")


def test_raw_latin1_and_cp1252_bytes_in_headers_are_recovered() -> None:
    message = parse(
        b"From: J\xf6rg M\xfcller <joerg@example.net>",
        b"Subject: caf\xe9 \x80 \x93quoted\x94",
    )
    assert message.subject == "café € “quoted”"
    assert message.from_ == Address("Jörg Müller", "joerg@example.net")


def test_raw_8bit_headers_use_the_declared_charset_when_not_utf8() -> None:
    message = parse(
        b"From: x@example.net",
        b"Content-Type: text/plain; charset=shift_jis",
        "Subject: 日本語".encode("shift_jis"),
    )
    assert message.subject == "日本語"


def test_a_declared_utf16_charset_is_no_hint_for_header_bytes() -> None:
    message = parse(b"Content-Type: text/plain; charset=utf-16", b"Subject: caf\xe9s")
    assert message.subject == "cafés"


# --- RFC 2047 encoded words -------------------------------------------------------------------


def test_encoded_words_q_and_b_are_decoded() -> None:
    message = parse(
        b"From: =?iso-8859-1?q?J=F6rg?= <joerg@example.net>",
        b"Subject: =?utf-8?b?QmVsw6RzdGlndW5n?= im =?utf-8?q?Caf=C3=A9?=",
    )
    assert message.subject == "Belästigung im Café"
    assert message.from_ == Address("Jörg", "joerg@example.net")


def test_whitespace_between_adjacent_encoded_words_is_dropped() -> None:
    assert decode_words("=?utf-8?q?a?= =?utf-8?q?b?=\t=?utf-8?q?c?=") == "abc"
    assert decode_words("=?utf-8?q?a?= plain =?utf-8?q?b?=") == "a plain b"


def test_a_character_split_across_two_encoded_words_is_joined() -> None:
    # "日本語" is 9 UTF-8 bytes; a mailer split them 4 + 5, in the middle of a character.
    first, second = "日本語".encode()[:4], "日本語".encode()[4:]
    value = (
        f"=?utf-8?b?{base64.b64encode(first).decode()}?= "
        f"=?utf-8?b?{base64.b64encode(second).decode()}?="
    )
    assert decode_words(value) == "日本語"


def test_folded_encoded_subject_is_unfolded_and_decoded() -> None:
    message = parse(b"Subject: =?utf-8?q?first_part?=\n =?utf-8?q?_second_part?=")
    assert message.subject == "first part second part"


def test_malformed_or_unknown_encoded_words_do_not_break_the_header() -> None:
    assert decode_words("=?utf-8?x?abc?= stays") == "=?utf-8?x?abc?= stays"
    assert decode_words("=?x-unknown?q?caf=E9?=") == "café"
    assert decode_words("no words here") == "no words here"


def test_raw_8bit_bytes_inside_an_encoded_word_are_read_in_its_charset() -> None:
    message = parse(b"Subject: =?iso-8859-1?Q?Die_Hasen_und_die_Fr\xf6sche?=")
    assert message.subject == "Die Hasen und die Frösche"


def test_an_encoded_display_name_with_a_comma_stays_one_address() -> None:
    message = parse(b"From: =?utf-8?q?Doe=2C_John?= <john@example.net>")
    assert message.from_ == Address("Doe, John", "john@example.net")


@pytest.mark.parametrize(
    "name",
    [
        b"=?utf-8?q?Mallory_=0D=0ABcc:_victim@example.com?=",
        b"=?utf-8?q?a:b,c@d.example;<e@f.example>?=",
        b'"=?utf-8?q?quoted:_x@y.example?="',
    ],
)
def test_specials_inside_an_encoded_name_do_not_split_the_address(name: bytes) -> None:
    message = parse(b"From: " + name + b" <mallory@example.net>, second@example.net")
    assert message.from_ is not None
    assert message.from_.email == "mallory@example.net"
    assert message.from_address == "mallory@example.net"
    assert "victim" not in message.from_.email
    assert [a.email for a in parse(b"To: " + name + b" <a@example.net>, b@example.net").to] == [
        "a@example.net",
        "b@example.net",
    ]


def test_an_encoded_display_name_cannot_smuggle_in_an_address() -> None:
    message = parse(b"From: =?utf-8?q?=3Cattacker=40evil=2Eexample=3E?= <real@example.net>")
    assert message.from_ is not None
    assert message.from_.email == "real@example.net"
    assert message.sender == message.from_


# --- bodies and attachments -------------------------------------------------------------------


def test_html_only_message_is_converted_to_text() -> None:
    message = parse(
        b"From: sam@example.net",
        b"Content-Type: text/html; charset=utf-8",
        body=b"<html><body><p>He <b>insulted</b> me.</p><ul><li>twice</li></ul></body></html>\n",
    )
    assert "<" not in message.text
    assert "He **insulted** me." in message.text
    assert "twice" in message.text
    assert "<b>insulted</b>" in message.html


def test_text_part_is_preferred_over_html() -> None:
    raw = make_mail(body="Plain words.", html="<p>HTML words.</p>")
    message = parse_message(raw)
    assert message.text == "Plain words."
    assert "HTML words." in message.html


ALL_BYTES = bytes(range(256)) * 3


def _attachment_mail() -> bytes:
    notes = "Grüße, café\n".encode("latin-1")
    return b"\n".join(
        [
            b"From: Sam <sam@example.net>",
            b"Subject: evidence",
            b"MIME-Version: 1.0",
            b'Content-Type: multipart/mixed; boundary="XYZ"',
            b"",
            b"--XYZ",
            b"Content-Type: text/plain; charset=utf-8",
            b"",
            b"See attached.",
            b"--XYZ",
            b'Content-Type: application/octet-stream; name="all-bytes.bin"',
            b'Content-Disposition: attachment; filename="all-bytes.bin"',
            b"Content-Transfer-Encoding: base64",
            b"",
            base64.encodebytes(ALL_BYTES),
            b"--XYZ",
            b"Content-Type: application/octet-stream",
            b'Content-Disposition: attachment; filename="all-bytes.qp"',
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            binascii.b2a_qp(ALL_BYTES, istext=False),
            b"--XYZ",
            b"Content-Type: text/plain; charset=iso-8859-1",
            b'Content-Disposition: attachment; filename="notes.txt"',
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            binascii.b2a_qp(notes),
            b"--XYZ--",
            b"",
        ]
    )


def test_attachments_are_decoded_to_their_exact_bytes() -> None:
    message = parse_message(_attachment_mail())
    found = {attachment.filename: attachment for attachment in message.attachments}
    assert set(found) == {"all-bytes.bin", "all-bytes.qp", "notes.txt"}
    assert found["all-bytes.bin"].payload == ALL_BYTES
    assert found["all-bytes.qp"].payload == ALL_BYTES
    assert found["notes.txt"].payload == "Grüße, café\n".encode("latin-1")
    assert found["all-bytes.bin"].content_type == "application/octet-stream"
    assert found["notes.txt"].content_type == "text/plain"
    assert message.text == "See attached."
    assert message.defects == ()


def test_attachment_with_broken_base64_padding_is_still_decoded() -> None:
    encoded = base64.b64encode(b"screenshot bytes!").rstrip(b"=")  # padding lost in transit
    raw = make_mail(attachments=[("x.bin", "application/octet-stream", b"placeholder")])
    raw = raw.replace(base64.b64encode(b"placeholder"), encoded)
    message = parse_message(raw)
    assert [a.payload for a in message.attachments] == [b"screenshot bytes!"]


# --- threading headers, senders ---------------------------------------------------------------


def test_in_reply_to_and_references_are_lists_of_message_ids() -> None:
    message = parse(
        b"Message-ID: <new@example.net>",
        b"In-Reply-To: <parent@example.org> (Sam's message of Monday)",
        b"References: <root@example.org>\n <middle@example.org>",
        b"References: <parent@example.org>",
    )
    assert message.message_id == "<new@example.net>"
    assert message.in_reply_to == ("<parent@example.org>",)
    assert message.references == (
        "<root@example.org>",
        "<middle@example.org>",
        "<parent@example.org>",
    )


def test_fetch_reads_the_same_message_id_as_the_parser_even_when_folded() -> None:
    raw = b"From: sam@example.net\r\nMessage-ID:\r\n <folded@example.net>\r\n\r\nHello.\r\n"
    assert message_id(raw) == parse_message(raw).message_id == "<folded@example.net>"
    assert message_id(b"Message-ID: <" + b"x" * 950 + b"@example.net>\n\nHi") is None


def test_from_counts_its_addresses_without_splitting_encoded_names() -> None:
    one = parse(b"From: =?utf-8?q?Doe=2C_John?= <john@example.org>")
    assert one.from_count == 1
    two = parse(b"From: john@example.org, eve@example.com")
    assert two.from_count == 2


def test_missing_or_bare_message_ids_give_nothing() -> None:
    message = parse(b"From: sam@example.net", b"In-Reply-To: not-an-id")
    assert message.message_id is None
    assert message.in_reply_to == ()
    assert message.references == ()


def test_a_message_without_from_has_no_sender() -> None:
    message = parse(b"To: info@example.org", b"Subject: anonymous")
    assert message.from_ is None
    assert message.sender is None
    assert message.from_address == ""
    assert message.subject == "anonymous"
    assert message.text == "Hello."


def test_reply_to_is_preferred_by_sender() -> None:
    message = parse(
        b"From: Sam <sam@work.example>",
        b"Reply-To: Sam Private <sam@home.example>, other@example.net",
    )
    assert message.from_ == Address("Sam", "sam@work.example")
    assert message.sender == Address("Sam Private", "sam@home.example")
    assert len(message.reply_to) == 2


def test_an_address_without_a_domain_is_not_answerable_but_is_kept_as_written() -> None:
    message = parse(b"From: Mail Delivery Subsystem <MAILER-DAEMON>")
    assert message.from_ is None
    assert message.from_address == "mailer-daemon"
    null = parse(b"From: MAILER-DAEMON <>")
    assert (null.from_, null.from_address) == (None, "")


def test_addresses_are_lowercased_and_recipients_listed() -> None:
    message = parse(
        b"From: Sam <Sam@Example.NET>",
        b"To: info@example.org, Bob <bob@example.org>",
        b"Cc: undisclosed-recipients:;",
    )
    assert message.from_ == Address("Sam", "sam@example.net")
    assert message.to == (Address("", "info@example.org"), Address("Bob", "bob@example.org"))
    assert message.cc == ()


# --- dates ------------------------------------------------------------------------------------


def test_dates_are_aware_or_none() -> None:
    assert parse(b"Date: Mon, 16 Nov 2026 10:00:00 +0100").date == datetime(
        2026, 11, 16, 10, 0, tzinfo=timezone(timedelta(hours=1))
    )
    assert parse(b"Date: Mon, 16 Nov 2026 10:00:00 GMT").date == datetime(
        2026, 11, 16, 10, 0, tzinfo=UTC
    )
    assert parse(b"Date: Mon, 16 Nov 2026 10:00:00 -0000").date is None  # unknown zone
    assert parse(b"Date: yesterday-ish").date is None
    assert parse(b"Date: Mon, 99 Nov 99999 99:99:99 +9999").date is None


# --- line endings and the header block --------------------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_headers_read_the_same_with_any_line_ending(end: bytes) -> None:
    raw = mail(
        b"From: Sam <sam@example.net>",
        b"Subject: a folded",
        b"  subject",
        b"Message-ID: <id@example.net>",
        body=end.join([b"Precedence: bulk", b"List-Id: <not.a.header>", b""]),
        end=end,
    )
    message = parse_message(raw)
    assert message.subject == "a folded  subject"
    assert message.from_ == Address("Sam", "sam@example.net")
    assert message.message_id == "<id@example.net>"
    assert [name for name, _ in message.headers] == ["From", "Subject", "Message-ID"]
    assert "Precedence: bulk" in message.text


def test_mbox_from_line_and_broken_header_lines_are_skipped() -> None:
    headers = raw_headers(
        b"From MAILER-DAEMON Sat Jun  9 14:56:09 2018\n"
        b"Subject : obsolete space before the colon\n"
        b"This line is no header\n"
        b"X-Fine: yes\n"
        b"\n"
        b"Body: not a header\n"
    )
    assert headers == (("Subject", "obsolete space before the colon"), ("X-Fine", "yes"))


def test_header_lookup_is_case_insensitive_and_returns_the_first() -> None:
    message = parse(b"X-Thing: one", b"x-thing: two")
    assert message.header("X-THING") == "one"
    assert message.header("X-Other") is None


# --- defects ----------------------------------------------------------------------------------


def test_a_missing_closing_boundary_is_a_defect_not_a_failure() -> None:
    raw = b"\n".join(
        [
            b"From: sam@example.net",
            b"Subject: cut off",
            b'Content-Type: multipart/mixed; boundary="B"',
            b"",
            b"--B",
            b"Content-Type: text/plain",
            b"",
            b"What I could send before my phone died.",
            b"",
        ]
    )
    message = parse_message(raw)
    assert "CloseBoundaryNotFoundDefect" in message.defects
    assert message.text == "What I could send before my phone died."
    assert message.content_type == "multipart/mixed"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"no headers at all",
        b"\x00\xff\xfe" * 100,
        b"Content-Type: multipart/mixed; boundary=\n\n--\n--\n",
        b"Content-Type: text/plain; charset=no-such-charset\n\ncaf\xe9\n",
        b"Content-Transfer-Encoding: base64\nContent-Type: text/html\n\n!!!not base64",
        b"From: " + b"<" * 5000 + b"\nSubject: =?utf-8?b?" + b"A" * 10001 + b"?=\n\nx",
    ],
    ids=["empty", "no-headers", "binary", "empty-boundary", "bad-charset", "bad-b64", "huge"],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    message = parse_message(raw)
    assert isinstance(message.subject, str)
    assert isinstance(message.text, str)


# --- the stalwart corpus as an oracle ---------------------------------------------------------


def _stalwart_header(expected: dict[str, Any], name: str) -> Any:
    for header in expected["parts"][0]["headers"]:
        if header["name"] == name:
            return header["value"]
    return None


def _stalwart_first_address(value: Any) -> tuple[str, str] | None:
    if not value or "Address" not in value:
        return None
    address = value["Address"]
    listed = address.get("List") or [
        member for group in address.get("Group", []) for member in group.get("addresses", [])
    ]
    if not listed or "@" not in (listed[0].get("address") or ""):
        return None  # no domain: nothing we could ever write to
    return (listed[0].get("name") or "", listed[0]["address"].lower())


STALWART_FILES = sorted(STALWART.rglob("*.eml"))


def test_stalwart_corpus_is_there() -> None:
    assert len(STALWART_FILES) == 107


@pytest.mark.parametrize("path", STALWART_FILES, ids=lambda p: str(p.relative_to(STALWART)))
def test_subject_from_and_message_id_match_stalwart(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    message = parse_message(path.read_bytes())

    subject = _stalwart_header(expected, "subject")
    expected_subject = (subject or {}).get("Text") or ""
    if "\ufffd" in expected_subject:
        # stalwart gives up on raw Latin-1 bytes; we read them as Windows-1252.
        assert "\ufffd" not in message.subject
        assert len(message.subject) == len(expected_subject)
    else:
        assert message.subject == expected_subject

    got_from = (message.from_.name, message.from_.email) if message.from_ else None
    assert got_from == _stalwart_first_address(_stalwart_header(expected, "from"))

    message_id = _stalwart_header(expected, "message_id")
    expected_id = f"<{message_id['Text']}>" if message_id else None
    assert message.message_id == expected_id
