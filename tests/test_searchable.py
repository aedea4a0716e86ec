"""A stored message's decoded text, which erasure searches besides the bytes: transfer
encodings undone, encoded words and entities decoded, attached messages read, and no message,
however hostile, makes it fail."""

from __future__ import annotations

import base64

import pytest

from intake.mail.searchable import searchable_text
from tests.support import CORPORA

ADDRESS = "sam@example.net"


def _b64(text: str) -> str:
    return base64.encodebytes(text.encode()).decode()


def _attached(part: str) -> str:
    return f"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n{part}\r\n--b--\r\n"


HIDDEN = {
    "a base64 body": "Content-Type: text/plain; charset=utf-8\r\n"
    f"Content-Transfer-Encoding: base64\r\n\r\n{_b64(f'Grüße von {ADDRESS}')}",
    "quoted-printable named in capitals": "Content-Type: text/plain; charset=latin-1\r\n"
    "Content-Transfer-Encoding: QUOTED-PRINTABLE\r\n\r\nGr=FC=DFe, sam=40example.net\r\n",
    "an encoding named with spaces and quotes": "Content-Type: text/plain\r\n"
    f'Content-Transfer-Encoding: "base64" \r\n\r\n{_b64(ADDRESS)}',
    "a charset that refuses to replace errors": "Content-Type: text/plain; charset=idna\r\n"
    f"Content-Transfer-Encoding: base64\r\n\r\n{_b64('hi ' + ADDRESS)}",
    "an encoded word in the subject": "Subject: =?utf-8?q?sam=40example=2Enet_wrote?=\r\n\r\nhi",
    "an encoded word in an attached message": _attached(
        "Content-Type: message/rfc822\r\n\r\n"
        f"From: =?utf-8?b?{base64.b64encode(ADDRESS.encode()).decode()}?=\r\n\r\nbody"
    ),
    "an attached message sent in base64": _attached(
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + _b64(f"From: x <{ADDRESS}>\r\n\r\nbody\r\n")
    ),
    "an RFC 2231 file name": _attached(
        "Content-Type: application/pdf\r\n"
        "Content-Disposition: attachment; filename*=utf-8''sam%40example.net.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAAA"
    ),
    "an HTML entity": "Content-Type: text/html\r\n\r\n<p>sam&#64;example.net</p>\r\n",
}


@pytest.mark.parametrize("raw", HIDDEN.values(), ids=HIDDEN.keys())
def test_an_address_hidden_by_an_encoding_is_found(raw: str) -> None:
    assert ADDRESS.encode() not in raw.encode()
    text = searchable_text(raw.encode())
    assert text is not None and ADDRESS in text


def test_a_message_with_nothing_encoded_is_searched_as_its_bytes() -> None:
    assert searchable_text(f"Subject: hi\r\n\r\nfrom {ADDRESS}\r\n".encode()) is None


def test_parts_nested_past_any_parser_are_read_as_bytes_without_an_error() -> None:
    nested = "".join(
        f"--b{n}\r\nContent-Type: multipart/mixed; boundary=b{n + 1}\r\n\r\n" for n in range(1500)
    )
    inner = HIDDEN["an HTML entity"]
    raw = f"Content-Type: multipart/mixed; boundary=b0\r\n\r\n{nested}--b1500\r\n{inner}"
    text = searchable_text(raw.encode())
    assert text is not None and "sam&#64;example.net" in text


def test_no_file_of_the_corpora_makes_it_fail() -> None:
    files = [path for path in CORPORA.rglob("*") if path.is_file()]
    assert len(files) > 1000
    decoded = [searchable_text(path.read_bytes()) for path in files]
    assert sum(1 for text in decoded if text) > 100
