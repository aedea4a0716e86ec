"""Raw bytes -> frozen ParsedMessage, with mail-parser underneath.

Nothing here raises on bad mail: defects are recorded and parsing goes on with what could be read.
mail-parser silently drops raw 8-bit bytes in headers (`Subject: caf\\xe9` becomes `caf`), so
headers are read from the raw header block instead, with their 8-bit bytes kept.

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
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

import html2text
import mailparser

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


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str
    content_type: str
    payload: bytes
    # Shown inside the HTML (a Content-ID, or disposition inline): a signature logo, usually.
    inline: bool = False


@dataclass(frozen=True)
class ParsedMessage:
    from_: Address | None
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str
    attachments: tuple[ParsedAttachment, ...]
    headers: tuple[tuple[str, str], ...]
    content_type: str
    defects: tuple[str, ...] = field(default=())
    # The first From address as written, lowercased, even when it cannot be answered: a bare
    # local part (`<MAILER-DAEMON>`) or "" for the null address `<>`. `from_` needs a domain.
    from_address: str = ""
    # How many addresses From names: more than one is legal but rare, and ambiguous for checks
    # of who sent it (DMARC judges one of them).
    from_count: int = 1
    # The message had no text part: `text` is its HTML converted (html2text).
    text_from_html: bool = False

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


@dataclass(frozen=True)
class _Body:
    text: str = ""
    html: str = ""
    attachments: tuple[ParsedAttachment, ...] = ()
    content_type: str = ""
    defects: tuple[str, ...] = ()
    text_from_html: bool = False


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


def _lenient_b64decode(data: bytes) -> bytes:
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
        return _lenient_b64decode(data)
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


# --- bodies and attachments -------------------------------------------------------------------


def html_to_text(html: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.unicode_snob = True
    return str(converter.handle(html)).strip()


def _attachment_bytes(item: dict[str, object]) -> bytes:
    payload = item.get("payload") or ""
    if isinstance(payload, bytes):
        return payload
    text = str(payload)
    if not item.get("binary"):
        return text.encode("utf-8", "surrogateescape")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return _lenient_b64decode(text.encode("ascii", "ignore"))


def _attachments(mail: mailparser.MailParser) -> tuple[ParsedAttachment, ...]:
    return tuple(
        ParsedAttachment(
            filename=str(item.get("filename") or "attachment"),
            content_type=str(item.get("mail_content_type") or "application/octet-stream"),
            payload=_attachment_bytes(item),
            inline=bool(item.get("content-id"))
            or str(item.get("content-disposition") or "").lower().startswith("inline"),
        )
        for item in mail.attachments
    )


def _defect_names(mail: mailparser.MailParser) -> tuple[str, ...]:
    return tuple(sorted(str(name) for name in getattr(mail, "defects_categories", None) or ()))


def _body(raw: bytes) -> _Body:
    """Text, HTML, attachments and defects; any failure becomes a defect, never an exception."""
    try:
        mail = mailparser.parse_from_bytes(raw)
        text = "\n".join(part for part in mail.text_plain if part).strip()
        html = "\n".join(part for part in mail.text_html if part).strip()
        message: Message = mail.message
        return _Body(
            text=text or (html_to_text(html) if html else ""),
            text_from_html=not text and bool(html),
            html=html,
            attachments=_attachments(mail),
            content_type=message.get_content_type(),
            defects=_defect_names(mail),
        )
    except Exception as exc:  # mail-parser and html2text raise many types on hostile input
        return _Body(defects=(f"unparseable MIME: {type(exc).__name__}: {exc}",))


def _declared_type(value: str | None) -> str:
    kind = (value or "").split(";", 1)[0].strip().lower()
    return kind if "/" in kind else "text/plain"


def parse_message(raw: bytes) -> ParsedMessage:
    """Never raises: mail no rule here foresaw still yields a message, empty but for a defect
    naming what went wrong, and so still becomes a case a person can look at."""
    try:
        return _parse(raw)
    except Exception as exc:  # hostile input must not stop the pipeline
        return ParsedMessage(
            from_=None,
            reply_to=(),
            to=(),
            cc=(),
            subject="",
            date=None,
            message_id=None,
            in_reply_to=(),
            references=(),
            text="",
            html="",
            attachments=(),
            headers=(),
            content_type="text/plain",
            defects=(f"unparseable: {type(exc).__name__}: {exc}"[:300],),
        )


def parse_headers_only(raw: bytes, note: str) -> ParsedMessage:
    """For a message too large to read whole: its headers, and `note` in place of its body."""
    end = re.search(rb"\r?\n\r?\n", raw[:1_000_000])
    head = raw[: end.start()] if end else raw[:1_000_000]
    head = re.sub(rb"(?im)^content-(type|transfer-encoding):", rb"X-Original-Content-\1:", head)
    return parse_message(head + b"\n\n" + note.encode("utf-8"))


def _parse(raw: bytes) -> ParsedMessage:
    texts = _unfolded_texts(raw)
    headers = tuple((name, decode_words(value)) for name, value in texts)
    body = _body(raw)
    from_pairs = _address_pairs(_values(texts, "From"))
    from_ = _writable(from_pairs)
    return ParsedMessage(
        from_=from_[0] if from_ else None,
        reply_to=_addresses(_values(texts, "Reply-To")),
        to=_addresses(_values(texts, "To")),
        cc=_addresses(_values(texts, "Cc")),
        subject=(_first(headers, "Subject") or "").strip(),
        date=_date(_first(texts, "Date")),
        message_id=_message_id(texts),
        in_reply_to=_msgids(_first(texts, "In-Reply-To")),
        references=_msgids(" ".join(_values(texts, "References"))),
        text=body.text,
        text_from_html=body.text_from_html,
        html=body.html,
        attachments=body.attachments,
        headers=headers,
        content_type=body.content_type or _declared_type(_first(texts, "Content-Type")),
        defects=body.defects,
        from_address=_from_address(_values(texts, "From")),
        from_count=len(from_pairs),
    )
