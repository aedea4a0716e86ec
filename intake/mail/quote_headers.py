"""Where quoted history starts in a reply: the quote headers ("On ... wrote:", Outlook's From:/Sent:
block, "-------- Original Message --------", forwarded-message markers) that the rules of
intake.mail.quotes act on."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from intake.mail.reply_lines import Lines, library_rules

# A quote header spread over more lines than this is not looked for (Gmail wraps at ~80 columns).
_HEADER_WINDOW = 5
_HAS_DIGIT_OR_ADDRESS = re.compile(r"\d|@")

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


def _field_block(lines: Lines, start: int) -> tuple[int, int, int]:
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


def _library_headers(lines: Lines, joined: str) -> list[_Span]:
    spans: list[_Span] = []
    starts = _line_starts(joined)
    covered = -1  # the last line of the previous From:/Sent: block
    for match in library_rules().header.finditer(joined):
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


def _window_header(lines: Lines, end: int) -> tuple[int, int] | None:
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


def _own_headers(lines: Lines) -> list[_Span]:
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


def followed_by_quote(lines: Lines, last: int) -> bool:
    after = last + 1
    while after < len(lines.detect) and lines.blank(after):
        after += 1
    return after < len(lines.detect) and lines.quoted(after)


def quote_headers(lines: Lines) -> list[tuple[int, int]]:
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
        and (span.strong or followed_by_quote(lines, span.last))
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
