"""A stored message's decoded text, which erasure searches besides the bytes: transfer
encodings undone, encoded words decoded, and no message of the corpora makes it fail."""

from __future__ import annotations

import base64

from intake.mail.searchable import searchable_text
from tests.support import CORPORA

ADDRESS = "sam@example.net"


def test_a_base64_body_is_decoded() -> None:
    body = base64.encodebytes(f"Grüße von {ADDRESS}".encode()).decode()
    raw = (
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + body
    ).encode()
    assert ADDRESS.encode() not in raw
    text = searchable_text(raw)
    assert text is not None and f"Grüße von {ADDRESS}" in text


def test_quoted_printable_named_in_capitals_and_an_encoded_word_are_decoded() -> None:
    raw = (
        b"Subject: =?utf-8?q?sam=40example=2Enet_wrote?=\r\n"
        b"Content-Type: text/plain; charset=latin-1\r\n"
        b"Content-Transfer-Encoding: QUOTED-PRINTABLE\r\n\r\n"
        b"Gr=FC=DFe, sam=40example.net\r\n"
    )
    text = searchable_text(raw)
    assert text is not None
    assert f"Subject: {ADDRESS} wrote" in text and f"Grüße, {ADDRESS}" in text


def test_a_message_with_nothing_encoded_is_searched_as_its_bytes() -> None:
    assert searchable_text(f"Subject: hi\r\n\r\nfrom {ADDRESS}\r\n".encode()) is None


def test_no_message_of_the_corpora_makes_it_fail() -> None:
    files = [path for path in CORPORA.rglob("*.eml") if path.is_file()]
    files += [path for path in (CORPORA / "mime4j-testmsgs").rglob("*.msg") if path.is_file()]
    assert len(files) > 100
    decoded = [searchable_text(path.read_bytes()) for path in files]
    assert any(text for text in decoded)
