"""The header block of a raw message: its lines, their 8-bit bytes and RFC 2047 encoded words,
addresses, Message-IDs and dates. Read from the raw bytes, never through mail-parser, which
silently drops raw 8-bit bytes in headers (`Subject: caf\\xe9` becomes `caf`).

Header lines end in CRLF, LF or a lone CR (old Mac mail); all three are read the same way.
Addresses are split *before* RFC 2047 encoded words are decoded, so an encoded display name can
neither hide an address (`=?utf-8?q?Doe=2C_John?=`) nor smuggle one in
(`=?utf-8?q?=3Cevil=40example=2Eorg=3E?= <real@example.org>`).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses, parsedate_to_datetime

_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")
_HEADER_LINE = re.compile(rb"^([!-9;-~]+)[ \t]*:(.*)$", re.DOTALL)
_MSGID = re.compile(r"<[^<>\s]+>")
MAX_MESSAGE_ID = 900  # longer is not a Message-ID anyone will quote back
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([qQbB])\?([^?\s]*)\?=")
_BASE64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_CHARSET = re.compile(r"""charset\s*=\s*"?([^";\s]+)""", re.IGNORECASE)
# Charsets whose 8-bit range is better read as Windows-1252, as browsers do (WHATWG encoding).
_LATIN1_NAMES = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii"}
# Not usable as a hint: they are not ASCII-compatible, so "decoding" header bytes with them
# would turn any even-length header into nonsense rather than fail.
_NOT_HINTS = ("utf-16", "utf-32", "utf-7")


@dataclass(frozen=True)
class Address:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True, kw_only=True)
class Headers:
    """What a message's header block says, read once (a ParsedMessage is one, with its body)."""

    headers: tuple[tuple[str, str], ...]  # every header, in order, encoded words decoded
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    # The first From address as written, lowercased, even when it cannot be answered: a bare
    # local part (`<MAILER-DAEMON>`) or "" for the null address `<>`. `from_` needs a domain.
    from_address: str = ""
    # How many addresses From names: more than one is legal but rare, and ambiguous for checks
    # of who sent it (DMARC judges one of them).
    from_count: int = 1
    # The Content-Type as declared: what a message whose body could not be read says it was.
    declared_type: str | None = None

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def headers_named(self, *names: str) -> list[str]:
        """The values of every header with one of these names (case-insensitive), in order."""
        wanted = {name.lower() for name in names}
        return [value for key, value in self.headers if key.lower() in wanted]

    @property
    def from_email(self) -> str:
        """The first writable From address (already lowercased), or ""."""
        return self.from_.email if self.from_ else ""

    @property
    def sender(self) -> Address | None:
        """Who a reply goes to: the first Reply-To, else From."""
        return self.reply_to[0] if self.reply_to else self.from_


def read_headers(raw: bytes) -> Headers:
    texts = _unfolded_texts(raw)
    fields = tuple((name, decode_words(value)) for name, value in texts)
    from_pairs = _address_pairs(_values(texts, "From"))
    from_ = _writable(from_pairs)
    return Headers(
        headers=fields,
        from_=from_[0] if from_ else None,
        from_address=_from_address(_values(texts, "From")),
        from_count=len(from_pairs),
        reply_to=_addresses(_values(texts, "Reply-To")),
        to=_addresses(_values(texts, "To")),
        cc=_addresses(_values(texts, "Cc")),
        subject=(_first(fields, "Subject") or "").strip(),
        date=_date(_first(texts, "Date")),
        message_id=_message_id(texts),
        in_reply_to=_msgids(_first(texts, "In-Reply-To")),
        references=_msgids(" ".join(_values(texts, "References"))),
        declared_type=_first(texts, "Content-Type"),
    )


# --- bytes and encoded words ------------------------------------------------------------------


def _known_charset(name: str | None) -> str | None:
    """A text encoding Python knows by that label, or None. Codecs that are not charsets
    (rot13, base64, zlib, hex) and idna are refused: a label in hostile mail must not pick them."""
    if not name:
        return None
    try:
        info = codecs.lookup(name.strip().strip('"').lower())
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name == "idna":
        return None
    return info.name


def _decode_bytes(value: bytes, hint: str | None = None) -> str:
    """8-bit bytes -> text: UTF-8 if they are valid UTF-8, else the hinted charset, else cp1252."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    charset = _known_charset(hint)
    if charset and charset not in _LATIN1_NAMES and not charset.startswith(_NOT_HINTS):
        try:
            return value.decode(charset)
        except UnicodeError:
            pass
    try:
        return value.decode("cp1252")
    except UnicodeDecodeError:
        return value.decode("latin-1")  # never fails: cp1252 leaves five bytes undefined


def lenient_b64decode(data: bytes) -> bytes:
    """Base64 as mailers really write it: stray characters ignored, missing padding tolerated."""
    cleaned = _BASE64_JUNK.sub(b"", data.split(b"=", 1)[0])
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    return base64.b64decode(cleaned + b"=" * (-len(cleaned) % 4))


def _word_bytes(charset: str, encoding: str, text: str) -> bytes | None:
    """The bytes an encoded word stands for, or None when it is malformed.

    Some mailers put raw 8-bit characters inside the word; those are taken as already being in
    the word's charset (they were decoded from the raw bytes before this point).
    """
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        try:
            data = text.encode(_known_charset(charset) or "utf-8")
        except UnicodeError:
            data = text.encode("utf-8")
    try:
        if encoding.lower() == "q":
            return binascii.a2b_qp(data, header=True)
        return lenient_b64decode(data)
    except (binascii.Error, ValueError):
        return None


def _decode_run(charset: str, data: bytes) -> str:
    known = _known_charset(charset)
    if known is None:
        return _decode_bytes(data)
    try:
        return data.decode(known, errors="replace")
    except UnicodeError:  # some codecs raise even with errors="replace"
        return _decode_bytes(data)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words -> text; a malformed word is left as written.

    Whitespace between adjacent encoded words is dropped (RFC 2047 section 6.2), and adjacent
    words in the same charset are decoded together, because mailers split multi-byte characters
    across words.
    """
    pieces: list[str] = []
    run_charset: str | None = None
    run = b""
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        data = _word_bytes(match.group(1), match.group(2), match.group(3))
        if data is None:
            continue  # malformed: stays in the text as written
        joined = run_charset is not None and not gap.strip()
        if not joined or match.group(1).lower() != run_charset:
            if run_charset is not None:
                pieces.append(_decode_run(run_charset, run))
            if not joined:
                pieces.append(gap)
            run_charset, run = match.group(1).lower(), b""
        run += data
        position = match.end()
    if run_charset is not None:
        pieces.append(_decode_run(run_charset, run))
    pieces.append(value[position:])
    return "".join(pieces)


# --- the raw header block ---------------------------------------------------------------------


def _header_lines(raw: bytes) -> list[bytes]:
    """Physical lines of the header block, up to the first empty line, without line ends."""
    lines: list[bytes] = []
    position = 0
    while position < len(raw):
        match = _LINE.match(raw, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        line = match.group().rstrip(b"\r\n")
        if not line:
            break
        lines.append(line)
    return lines


def _raw_fields(raw: bytes) -> list[tuple[str, bytes]]:
    """(name, unfolded value bytes) for each header field; lines that are not fields are skipped.

    An mbox `From ` separator line at the top is skipped too, as is anything else that is not a
    field: mail with broken header lines still yields the fields it has (as mime4j does).
    """
    fields: list[tuple[str, bytes]] = []
    for line in _header_lines(raw):
        if line[:1] in (b" ", b"\t"):
            if fields:
                name, value = fields[-1]
                fields[-1] = (name, value + line)
            continue
        match = _HEADER_LINE.match(line)
        if match:
            fields.append((match.group(1).decode("ascii"), match.group(2)))
    return fields


def _charset_hint(fields: list[tuple[str, bytes]]) -> str | None:
    """The charset the top-level Content-Type declares: a hint for raw 8-bit header bytes."""
    for name, value in fields:
        if name.lower() == "content-type":
            match = _CHARSET.search(value.decode("ascii", "replace"))
            return match.group(1) if match else None
    return None


def _unfolded_texts(raw: bytes) -> list[tuple[str, str]]:
    """(name, value) with 8-bit bytes decoded but encoded words still encoded."""
    fields = _raw_fields(raw)
    hint = _charset_hint(fields)
    return [(name, _decode_bytes(value.strip(), hint)) for name, value in fields]


def raw_headers(raw: bytes) -> tuple[tuple[str, str], ...]:
    """The header block read straight from the bytes: unfolded, 8-bit bytes kept, words decoded."""
    return tuple((name, decode_words(value)) for name, value in _unfolded_texts(raw))


# --- header values ----------------------------------------------------------------------------


def _values(fields: Sequence[tuple[str, str]], name: str) -> list[str]:
    lowered = name.lower()
    return [value for key, value in fields if key.lower() == lowered]


def _first(fields: Sequence[tuple[str, str]], name: str) -> str | None:
    values = _values(fields, name)
    return values[0] if values else None


def _hide_words(value: str) -> tuple[str, dict[str, str]]:
    """Encoded words replaced by plain tokens, so that `:`, `,`, `<` or `@` inside one cannot
    change how the address list is split; returns the text and the token -> word map."""
    prefix = "encodedword"
    while prefix in value:
        prefix += "x"
    words: dict[str, str] = {}

    def hide(match: re.Match[str]) -> str:
        token = f"{prefix}{len(words)}x"
        words[token] = match.group()
        return token

    return _ENCODED_WORD.sub(hide, value), words


def _restore_words(text: str, words: dict[str, str]) -> str:
    for token, word in words.items():
        text = text.replace(token, word)
    return text


def _address_pairs(values: list[str]) -> list[tuple[str, str]]:
    """(display name, address) as written; encoded words in names are decoded after the split."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        hidden, words = _hide_words(value)
        for name, email in getaddresses([hidden]):
            name, email = _restore_words(name, words), _restore_words(email, words)
            pairs.append((decode_words(name).strip(), email.strip().lower()))
    return pairs


def _addresses(values: list[str]) -> tuple[Address, ...]:
    return _writable(_address_pairs(values))


def _writable(pairs: list[tuple[str, str]]) -> tuple[Address, ...]:
    """Only addresses that can be written to: they have a domain."""
    return tuple(Address(name=name, email=email) for name, email in pairs if "@" in email)


def _from_address(values: list[str]) -> str:
    pairs = _address_pairs(values[:1])
    return pairs[0][1] if pairs else ""


def _msgids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value or ""))


def _message_id(texts: Sequence[tuple[str, str]]) -> str | None:
    found = next(iter(_msgids(_first(texts, "Message-ID"))), None)
    return found if found is not None and len(found) <= MAX_MESSAGE_ID else None


def message_id(raw: bytes) -> str | None:
    """The Message-ID, read from the header block only (fetch stores it before parsing)."""
    return _message_id(_unfolded_texts(raw))


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else None
