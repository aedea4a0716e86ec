"""What the sender of a reply newly wrote: quoted history, quote headers and signatures removed.

mail-parser-reply supplies the knowledge (its quote-header regexes for every language it knows,
Outlook's From:/Sent: blocks in each language, its "-- " and "Sent from my ..." signature
patterns), but `EmailReplyParser.parse_reply` is not used as is, because on its own it:

- strips every line, so indented text and code lose their indentation;
- keeps `>`-quoted lines and cuts at the *first* header, which loses the answers of an
  interleaved or bottom-posted reply ("On ... wrote:" / quote / answer / quote / answer);
- ends the reply at sign-offs ("Thanks,", "Best,", "Tak", "Kh", "/word" ...) matched without
  word boundaries, so "Thanks, and he wrote to me again yesterday: ..." or a line starting with
  "Take" or "Khalid" loses everything after it. Sign-offs are the sender's own words and are
  kept; its disclaimer patterns (which match "Warning: ... email ..." anywhere) are not used;
- treats lines starting with "- " as a signature (hyphen lists), and a single Polish field line
  ("Data: ...", "Do: ...") or a "... wrote:" line without any date as a quote header, which in a
  report ("On Friday he wrote:") would hide the rest.

So the text is read line by line. The library's header regex (all languages) and a few extra
patterns (quote headers wrapped over several lines, Gmail's "2016-03-03 17:21 GMT+01:00 Name",
"-------- Original Message --------" and forwarded-message markers in several languages) find
where quoted history starts. A header needs a digit or an address to count, a From:/Sent: block
also two fields with a sender field among them, and a "... wrote:" header with neither a time
nor an address counts only when a `>` quote follows it (a report's "On 5 May 2026 he wrote:"
followed by his words stays). Then:

- a header followed by text that is not `>`-quoted starts the history (top posting): it and
  everything after it go;
- a header followed by a `>` quote goes with the quote, and reading goes on, so the answers of
  an interleaved or bottom-posted reply are kept;
- a header at the very top (a bare forward, a bottom post) is skipped rather than ending the
  message, so a forward without a comment keeps the forwarded content;
- signatures end the text: "-- ", the library's "Sent from my ..." lines and more mobile
  signatures (only when short), and a "____" separator of 32 or more after a blank line;
- `>`-quoted lines go, lines inside ``` fences are never touched, and trailing lines made only
  of separator characters ("--", "***", "ᐧ") go. Other lines are kept as written, less their
  trailing spaces.

HTML-only replies first lose their quote containers (Gmail's div.gmail_quote, blockquote,
Outlook's #divRplyFwdMsg and everything after it, everything after #appendonsend, Thunderbird's
div.moz-cite-prefix, Yahoo's div.yahoo_quoted) and signature containers (div.gmail_signature,
div.moz-signature); the rest becomes text exactly as `intake.parse.html_to_text` does. Each
removed quote leaves a one-line `>` stub, so an "On ... wrote:" kept outside its container (Apple
Mail) still counts as followed by a quote. `text` counts as derived from `html` when it is empty
or equals `html_to_text(html)` but for whitespace; a separate text part is used as it is.

Nothing raises: on any error (and for bodies over a million characters) the text falls back to
dropping `>` lines and a trailing "-- " signature, and that fallback returns "" only when every
line with content was quoted.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from bs4 import BeautifulSoup, Tag
from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

from intake.mail.parse import ParsedMessage, html_to_text

__all__ = ["new_text", "reply_text"]

# Bodies longer than this (no reply is) get only the conservative line-based stripping, which
# is linear; the full detection costs about two seconds per megabyte.
_MAX_DETECTED_CHARS = 1_000_000
# Headers are never longer than this; longer lines are cut in the copy used for detection only,
# which keeps the library's backtracking regexes linear on hostile one-line bodies.
_DETECT_LINE_LIMIT = 1000
# A quote header spread over more lines than this is not looked for (Gmail wraps at ~80 columns).
_HEADER_WINDOW = 5

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_INVISIBLE = str.maketrans(
    {"\u200b": None, "\ufeff": None, "\u200e": None, "\u200f": None, "\xa0": " "}
)
_QUOTE = re.compile(r"^\s*>")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HAS_DIGIT_OR_ADDRESS = re.compile(r"\d|@")
_DECORATION = re.compile(r"^[\s\-_=+~#*•·ᐧ—\u2013|]*$")
_DELIMITER = re.compile(r"^(?:--|__)$")
_OUTLOOK_SEPARATOR = re.compile(r"^[_-]{32,}$")

# Header fields as mail clients write them when quoting or forwarding, in the languages the
# library knows and a few more. Used to grow a From:/Sent: block to its full extent.
_FIELD = re.compile(
    r"^[>*\s]*(?:From|Reply-To|Sender|Date|Sent|To|Cc|Bcc|Subject|Organi[sz]ation|Importance|"
    r"Von|Antwort an|Gesendet|Datum|An|Kopie|Betreff|Organisation|"
    r"De|Répondre à|Envoyé|À|Objet|Responder a|Enviado|Fecha|Para|Asunto|CC|"
    r"Da|Risposta|Rispondi a|Inviato|Data|A|Oggetto|"
    r"Van|Antwoord aan|Verzonden|Aan|Onderwerp|"
    r"Från|Svara till|Skickat|Till|Kopia|Ämne|Fra|Sendt|Til|Emne|Dato|Kopi|"
    r"Od|Wysłano|Do|Temat|DW|Odesláno|Komu|Předmět|"
    r"От|Отправлено|Дата|Кому|Копия|Тема|Від|Надіслано|"
    r"发件人|发送时间|收件人|抄送|主题|日期|寄件者|傳送時間|收件者|主旨|"
    r"보낸\s?사람|보낸\s?날짜|받는\s?사람|제목|참조)"
    r"\s?\*?\s?[:\uff1a]",
    re.IGNORECASE,
)

# The sender field that every client puts in a quoted or forwarded header block: a report that
# starts with "Subject: ...\nDate: ..." is not one.
_FROM_FIELD = re.compile(
    r"^[>*\s]*(?:From|Von|De|Da|Van|Från|Fra|Od|От|Від|发件人|寄件者|보낸\s?사람)\s?\*?\s?[:\uff1a]",
    re.IGNORECASE | re.MULTILINE,
)

_ORIGINAL = (
    r"Original Message|Ursprüngliche Nachricht|Originalnachricht|Mensaje original|"
    r"Message d'origine|Message original|Messaggio originale|Oorspronkelijk bericht|"
    r"Origineel bericht|Originalmeddelande|Opprinnelig melding|Oprindelig meddelelse|"
    r"Wiadomość oryginalna|Oryginalna wiadomość|Исходное сообщение|Mensagem original|"
    r"Původní zpráva|原始邮件|原始郵件"
)
_FORWARDED = (
    r"Forwarded message|Forwarded Message|Weitergeleitete Nachricht|Message transféré|"
    r"Mensaje reenviado|Messaggio inoltrato|Doorgestuurd bericht|Videresendt melding|"
    r"Videresendt meddelelse|Vidarebefordrat meddelande|Wiadomość przekazana|"
    r"Пересылаемое сообщение|Mensagem encaminhada|Přeposlaná zpráva|转发的邮件|轉寄的郵件"
)
# Markers that start quoted or forwarded history on a line of their own.
_SINGLE_LINE_HEADERS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^[*_\s]*-{{2,}}\s*(?:{_ORIGINAL}|{_FORWARDED})\s*-{{2,}}[*_\s]*$", re.I),
    re.compile(
        r"^(?:Begin forwarded message|Anfang der weitergeleiteten Nachricht|"
        r"Début du message réexpédié|Début du message transféré|Inicio del mensaje reenviado|"
        r"Inizio messaggio inoltrato|Begin doorgestuurd bericht|Início da mensagem reencaminhada)"
        r"\s*[:\uff1a]$",
        re.I,
    ),
    # Gmail in ISO-date locales: "2016-03-03 17:21 GMT+01:00 Some One <some@one.org>:"
    re.compile(r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2} GMT[+-]\d{1,2}(?::?\d{2})?\s.+$"),
    # "2013/7/20 sam via Discourse Meta <info@discourse.org>"
    re.compile(r"^\d{4}/\d{1,2}/\d{1,2}\s.{1,200}<[^<>\s]+@[^<>\s]+>\s*:?$"),
)

_ADDRESS_IN_BRACKETS = r"<\s*(?:mailto:)?[^<>\s]+@[^<>\s]+\s*>"
# Quote headers ("On <date>, <name> wrote:") in many languages, matched against up to
# _HEADER_WINDOW joined lines; each must also contain a digit or an address.
_WROTE_HEADERS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^(?:On|At)\s.*\bwrote\s*:$",
        r"^-{2,}\s*On\s.*\bwrote\s*-{2,}$",
        rf"^[^<>]{{0,100}}{_ADDRESS_IN_BRACKETS}\s*(?:wrote|schrieb|a écrit|escribió|escreveu|"
        r"ha scritto|schreef|skrev|napisał\(a\)|napisał|napisała|написал|написала|пише|"
        r"napsal\(a\)|kirjoitti|yazd\u0131)\s*:$",
        r"^Am\s.*\bschrieb\b.*:$",
        r"^.*\bschrieb am\b.*:$",
        r"^Le\s.*\ba\s+écrit\s*:$",
        r"^El\s.*\bescribió\s*:$",
        r"^Em\s.*\bescreveu\s*:$",
        r"^Il\s.*\bha scritto\s*:$",
        r"^Op\s.*\b(?:schreef|geschreven)\b.*:$",
        r"^(?:Den|På|\d).*\bskrev\b.*:$",
        r"^.*\b(?:napisał\(a\)|napisał|napisała|nadesłał)\s*:$",
        r"^.*\b(?:написал\(\u0430\)|написал|написала|пише|написав)\s*:$",
        r"^.*\bnapsal(?:\(a\)|a)?\s*:$",
        r"^.*\bkirjoitti\s*:$",
        r"^.*\byazd\u0131\s*:$",
        r"^.*(?:写道|寫道)\s*[:\uff1a]$",
    )
)
# Where a quote header spread over several lines plausibly begins.
_HEADER_START = re.compile(
    r"^(?:-{2,}\s*)?(?:(?:On|At|Am|Le|El|Em|Il|Op|Den|På|Dnia|Dne|W dniu)\b|在|\d)"
    r"|^[^\W\d_]{2,15}\.?,\s*\d"
    r"|^[^<>\s][^<>]*<\s*(?:mailto:)?[^<>\s]+@",  # "Name <address> schrieb am ..."
    re.IGNORECASE,
)

# Mobile and webmail signatures beyond the library's own ("Sent from my", "Gesendet von", ...).
_MOBILE_SIGNATURES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"^\(?\s*sent (?:from|with|via|by|using) .{1,60}\)?$",
        r"^<<\s*sent (?:from|by|with) .{1,40}>>$",
        r"^from my (?:iphone|ipad|ipod|android|mobile|phone|samsung|galaxy|blackberry|pixel)\b.*$",
        r"^get (?:\[)?outlook for .{1,60}$",
        r"^envoyé (?:de|depuis) .{1,60}$",
        r"^von meinem .{1,60} gesendet\.?$",
        r"^diese nachricht wurde von meinem .{1,80} gesendet\.?$",
        r"^verzonden (?:met|vanaf|van) .{1,60}$",
        r"^(?:sendt|skickat) (?:fra|från) .{1,60}$",
        r"^enviado (?:desde|de) .{1,60}$",
        r"^inviato da .{1,60}$",
        r"^wysłano z .{1,60}$",
        r"^отправлено (?:\u0441|из) .{1,60}$",
        r"^(?:从我的|從我的|发自我的|寄自我的).{1,40}$",
    )
)
_URLS = re.compile(r"<[^<>]*>|\([^()]*://[^()]*\)|\S+://\S+")
_SHORT_SIGNATURE_CHARS = 60
_SHORT_SIGNATURE_WORDS = 9


@dataclass(frozen=True)
class _Rules:
    header: re.Pattern[str]
    sent_from: re.Pattern[str]


@cache
def _rules() -> _Rules:
    """The library's header and "Sent from" regexes with every language it supports."""
    languages = list(EmailReplyParser(languages=list(MAIL_LANGUAGES)).languages)
    message = EmailMessage(text="", languages=languages, keep_hyphen_lists=True)
    header: re.Pattern[str] = message.HEADER_REGEX
    sent_from = "|".join(
        str(MAIL_LANGUAGES[language].get("sent_from") or "")
        for language in languages
        if MAIL_LANGUAGES[language].get("sent_from")
    )
    # The library's "Sent from my ..." rule (SIGNATURE_REGEX part 2), without its sign-offs.
    sent_from_line = re.compile(
        rf"^(?:{sent_from}) ?(?:(?:[\w.<>:// ]+)|(?:\w+ ){{1,3}})$", re.IGNORECASE
    )
    return _Rules(header=header, sent_from=sent_from_line)


# --- lines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lines:
    original: list[str]  # as written, trailing spaces removed
    detect: list[str]  # stripped, invisible characters removed, cut to _DETECT_LINE_LIMIT
    code: list[bool]  # inside a closed ``` fence (fence lines included)

    def quoted(self, index: int) -> bool:
        return not self.code[index] and _QUOTE.match(self.original[index]) is not None

    def blank(self, index: int) -> bool:
        return not self.detect[index]


def _split(text: str) -> _Lines:
    original = [line.rstrip() for line in _LINE_BREAKS.split(text)]
    detect = [line.translate(_INVISIBLE).strip()[:_DETECT_LINE_LIMIT] for line in original]
    code = [False] * len(original)
    opened: int | None = None
    for index, line in enumerate(detect):
        if _FENCE.match(line):
            if opened is None:
                opened = index
            else:
                code[opened : index + 1] = [True] * (index + 1 - opened)
                opened = None
    return _Lines(original, detect, code)


# --- quote headers -----------------------------------------------------------------------------

# A time ("10:42", "20.42", "11h30", not the "16.11" of a date) or an address: what the quote
# headers of mail clients have and a sentence in a report rarely has.
_TIME_OR_ADDRESS = re.compile(
    r"(?<![\d.])\d{1,2}[:h]\d{2}(?!\d)|(?<![\d.])\d{1,2}\.\d{2}(?![\d.])|@"
)


@dataclass(frozen=True)
class _Span:
    first: int
    last: int
    strong: bool  # a header even when no quote follows it


def _is_field(line: str) -> bool:
    return _FIELD.match(line) is not None


def _field_block(lines: _Lines, start: int) -> tuple[int, int, int]:
    """(first, last, fields) of the From:/Sent: block around line `start`: consecutive field
    lines, and lines a long field value wrapped onto ("Subject: a long" / "subject" / "To:")."""
    first = start
    while first > 0 and _is_field(lines.detect[first - 1]):
        first -= 1
    last = start
    count = 1
    index = start + 1
    while index < len(lines.detect):
        if _is_field(lines.detect[index]):
            last, count = index, count + 1
        elif (
            lines.detect[index]
            and index + 1 < len(lines.detect)
            and _is_field(lines.detect[index + 1])
        ):
            pass  # a wrapped value ("Subject: a long\nsubject"), the block goes on below
        else:
            break
        index += 1
    return first, last, count


def _line_starts(text: str) -> list[int]:
    return [0, *(match.end() for match in re.finditer("\n", text))]


def _line_of(starts: list[int], position: int) -> int:
    return bisect_right(starts, position) - 1


def _library_headers(lines: _Lines, joined: str) -> list[_Span]:
    spans: list[_Span] = []
    starts = _line_starts(joined)
    covered = -1  # the last line of the previous From:/Sent: block
    for match in _rules().header.finditer(joined):
        text = match.group(0)
        if not text.strip():
            continue
        start = _line_of(starts, match.start() + len(text) - len(text.lstrip()))
        if start <= covered:
            continue
        if _is_field(lines.detect[start]):
            first, last, fields = _field_block(lines, start)
            covered = last
            block = "\n".join(lines.detect[first : last + 1])
            if fields >= 2 and _HAS_DIGIT_OR_ADDRESS.search(block) and _FROM_FIELD.search(block):
                spans.append(_Span(first, last, strong=True))
        else:
            end = _line_of(starts, match.start() + len(text.rstrip()))
            if _HAS_DIGIT_OR_ADDRESS.search(text):
                strong = _TIME_OR_ADDRESS.search(text) is not None
                spans.append(_Span(start, max(start, end), strong))
    return spans


def _window_header(lines: _Lines, end: int) -> tuple[int, int] | None:
    """The quote header that ends on line `end`, if any, joined from up to five lines."""
    found: tuple[int, int] | None = None
    for size in range(_HEADER_WINDOW):
        start = end - size
        if start < 0 or (size and lines.quoted(start)) or lines.code[start]:
            break
        if lines.blank(start):
            continue
        joined = " ".join(line for line in lines.detect[start : end + 1] if line)
        if not _HAS_DIGIT_OR_ADDRESS.search(joined):
            continue
        if any(pattern.match(joined) for pattern in _WROTE_HEADERS):
            if _HEADER_START.search(lines.detect[start]):
                return start, end
            found = found or (start, end)
    return found


def _own_headers(lines: _Lines) -> list[_Span]:
    spans: list[_Span] = []
    for index, line in enumerate(lines.detect):
        if not line or lines.code[index]:
            continue
        if any(pattern.match(line) for pattern in _SINGLE_LINE_HEADERS):
            spans.append(_Span(index, index, strong=True))
        elif line.endswith((":", "\uff1a", "--")):
            span = _window_header(lines, index)
            if span is not None:
                text = " ".join(lines.detect[span[0] : span[1] + 1])
                spans.append(_Span(*span, _TIME_OR_ADDRESS.search(text) is not None))
    return spans


def _followed_by_quote(lines: _Lines, last: int) -> bool:
    after = last + 1
    while after < len(lines.detect) and lines.blank(after):
        after += 1
    return after < len(lines.detect) and lines.quoted(after)


def _headers(lines: _Lines) -> list[tuple[int, int]]:
    """Quote header spans (first line, last line), in order and merged where they overlap.

    Headers inside a quoted block or a code fence do not count: their block is dropped or kept
    as a whole. A "... wrote:" line with a date but neither a time nor an address counts only
    when a quote follows it: in a report, "On 5 May 2026 he wrote:" may introduce his words."""
    # Quoted and fenced lines are blanked (line numbers stay) for the library: a header starting
    # there would not count anyway, and long quoted histories make its regexes slow.
    joined = "\n".join(
        "" if lines.quoted(index) or lines.code[index] else line
        for index, line in enumerate(lines.detect)
    )
    spans = sorted(
        (span.first, span.last)
        for span in _library_headers(lines, joined) + _own_headers(lines)
        if not lines.quoted(span.first)
        and not lines.code[span.first]
        and (span.strong or _followed_by_quote(lines, span.last))
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- signatures --------------------------------------------------------------------------------


def _short(line: str) -> bool:
    bare = _URLS.sub("", line).strip()
    return len(bare) <= _SHORT_SIGNATURE_CHARS and len(bare.split()) <= _SHORT_SIGNATURE_WORDS


def _signature_at(lines: _Lines, index: int) -> bool:
    line = lines.detect[index]
    if _DELIMITER.match(line):
        return True
    if _OUTLOOK_SEPARATOR.match(line) and index > 0 and lines.blank(index - 1):
        return True
    if not _short(line):
        return False
    return _rules().sent_from.match(line) is not None or any(
        pattern.match(line) for pattern in _MOBILE_SIGNATURES
    )


def _signature(lines: _Lines, start: int, stop: int) -> int | None:
    for index in range(start, stop):
        if (
            lines.detect[index]
            and not lines.code[index]
            and not lines.quoted(index)
            and _signature_at(lines, index)
        ):
            return index
    return None


# --- assembling --------------------------------------------------------------------------------


def _has_content(lines: _Lines, indices: Sequence[int]) -> bool:
    """Whether any of these lines is text: not blank, not quoted, not a mere separator."""
    return any(
        not lines.quoted(index) and not _is_decoration(lines.original[index]) for index in indices
    )


def _kept_lines(lines: _Lines) -> list[int]:
    headers = _headers(lines)
    kept: list[int] = []
    has_content = False
    position = 0
    for first, last in [*headers, (len(lines.detect), len(lines.detect))]:
        if first < position:
            continue
        cut = _signature(lines, position, first)
        if cut is not None:
            kept.extend(range(position, cut))
            return kept
        kept.extend(range(position, first))
        if first >= len(lines.detect):
            return kept
        has_content = has_content or _has_content(lines, range(position, first))
        if not has_content:
            position = last + 1  # a header at the top: a bare forward or a bottom post
        elif _followed_by_quote(lines, last):
            after = last + 1
            while after < len(lines.detect) and (lines.blank(after) or lines.quoted(after)):
                after += 1
            position = after  # the header's quote is dropped; an interleaved answer may follow
        else:
            return kept  # top posting: the rest is history
    return kept


def _render(lines: _Lines, kept: list[int]) -> str:
    output: list[str] = []
    dropped = False
    previous = -1
    for index in kept:
        if lines.quoted(index) or index != previous + 1:
            dropped = True  # a quote or a header went: keep what surrounds it apart
        previous = index
        if lines.quoted(index):
            continue
        if dropped and lines.blank(index) and (not output or not output[-1].strip()):
            continue
        if dropped and output and output[-1].strip():
            output.append("")
        dropped = False
        output.append(lines.original[index])
    while output and (not output[-1].strip() or _is_decoration(output[-1])):
        output.pop()
    return "\n".join(output).strip()


def _is_decoration(line: str) -> bool:
    return _DECORATION.match(line.translate(_INVISIBLE)) is not None and "`" not in line


def _trim_text(text: str) -> str:
    lines = _split(text)
    return _render(lines, _kept_lines(lines))


# --- HTML --------------------------------------------------------------------------------------

_REPLY_HEADER_ID = re.compile(r"^(?:x_)?divRplyFwdMsg$")
_APPEND_ON_SEND_ID = re.compile(r"^(?:x_)?appendonsend$")
_QUOTE_CONTAINERS = (
    "div.gmail_quote",
    "blockquote",
    "div.moz-cite-prefix",
    "div.yahoo_quoted",
)
_SIGNATURE_CONTAINERS = ("div.gmail_signature", "div.moz-signature")
_STUB_CLASS = "intake-removed-quote"


def _drop_following(node: Tag) -> None:
    """Remove everything after `node` in document order."""
    current: Tag | None = node
    while current is not None and current.name not in ("body", "html", "[document]"):
        for sibling in list(current.next_siblings):
            sibling.extract()
        current = current.parent


def _html_reply_text(html: str) -> str:
    """The HTML's text without its quote and signature containers. Each removed quote leaves a
    one-line `>` quote behind, so that the text step still sees "On ... wrote:" followed by a
    quote (and drops both) when the header was outside the container, as Apple Mail writes it."""
    soup = BeautifulSoup(html, "html.parser")

    def replace_with_stub(node: Tag) -> None:
        stub = soup.new_tag("blockquote", attrs={"class": _STUB_CLASS})
        stub.string = "..."
        node.replace_with(stub)

    for anchor_id in (_APPEND_ON_SEND_ID, _REPLY_HEADER_ID):
        for anchor in soup.find_all(id=anchor_id):
            if isinstance(anchor, Tag) and anchor.parent is not None:
                _drop_following(anchor)
                replace_with_stub(anchor)
    for selector in _QUOTE_CONTAINERS:
        for container in soup.select(selector):
            if _STUB_CLASS not in (container.get_attribute_list("class") or []):
                replace_with_stub(container)
    for selector in _SIGNATURE_CONTAINERS:
        for container in soup.select(selector):
            container.extract()
    return html_to_text(str(soup))


# --- public API --------------------------------------------------------------------------------


def _same_text(one: str, other: str) -> bool:
    return one.split() == other.split()


def _from_html(text: str, html: str) -> bool:
    if not html.strip():
        return False
    return not text.strip() or _same_text(text, html_to_text(html))


def reply_text(message: ParsedMessage) -> str:
    """What the sender of this reply newly wrote (see new_text)."""
    return new_text(message.text, message.html, from_html=message.text_from_html)


def _fallback(text: str) -> str:
    """Conservative: `>` lines and a trailing "-- " signature go, and nothing else."""
    lines = [line.rstrip() for line in _LINE_BREAKS.split(text)]
    unquoted = [line for line in lines if not _QUOTE.match(line)]
    for index, line in enumerate(unquoted):
        if line.strip() == "--" and any(part.strip() for part in unquoted[:index]):
            unquoted = unquoted[:index]
            break
    return "\n".join(unquoted).strip()


def _crude_html_text(html: str) -> str:
    return re.sub(r"<[^>]*>", " ", html)


def _safely(step: Callable[[], str], default: str) -> str:
    try:
        return step()
    except Exception:  # hostile mail: any failure of a parser must not stop the pipeline
        return default


def new_text(text: str, html: str = "", *, from_html: bool | None = None) -> str:
    """What the sender newly wrote in a reply: quoted history, quote headers and signatures removed.
    `text` is the message's text (for HTML-only mail, intake.parse already converted it from the
    HTML); when `html` is given and `text` is empty or was derived from it, the HTML's quote
    containers are removed first. `from_html` says whether it was, when the caller knows (else
    the text is compared with a conversion of the HTML: a second conversion)."""
    text = text or ""
    html = html or ""
    try:
        if from_html is None:
            from_html = _from_html(text, html)
        source = _html_reply_text(html) if from_html and html.strip() else text
        if len(source) > _MAX_DETECTED_CHARS:
            return _fallback(source)
        return _trim_text(source)
    except Exception:  # hostile mail: fall back to what cannot go wrong
        plain = text if text.strip() else _safely(lambda: html_to_text(html), "")
        if not plain.strip() and html.strip():
            plain = _crude_html_text(html)
        return _safely(lambda: _fallback(plain), plain.strip())
