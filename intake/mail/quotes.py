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
div.moz-signature); the rest becomes text exactly as `intake.mail.parse.html_to_text` does. Each
removed quote leaves a one-line `>` stub, so an "On ... wrote:" kept outside its container (Apple
Mail) still counts as followed by a quote. `text` counts as derived from `html` when it is empty
or equals `html_to_text(html)` but for whitespace; a separate text part is used as it is.

Nothing raises: on any error (and for bodies over a million characters) the text falls back to
dropping `>` lines and a trailing "-- " signature, and that fallback returns "" only when every
line with content was quoted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from bs4 import BeautifulSoup, Tag

from intake.mail.parse import ParsedMessage, html_to_text
from intake.mail.quote_headers import followed_by_quote, quote_headers
from intake.mail.reply_lines import INVISIBLE, LINE_BREAKS, QUOTE, Lines, library_rules, split_lines

__all__ = ["new_text", "reply_text"]

# Bodies longer than this (no reply is) get only the conservative line-based stripping, which
# is linear; the full detection costs about two seconds per megabyte.
_MAX_DETECTED_CHARS = 1_000_000
_DECORATION = re.compile(r"^[\s\-_=+~#*•·ᐧ—\u2013|]*$")
_DELIMITER = re.compile(r"^(?:--|__)$")
_OUTLOOK_SEPARATOR = re.compile(r"^[_-]{32,}$")
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


# --- signatures --------------------------------------------------------------------------------


def _short(line: str) -> bool:
    bare = _URLS.sub("", line).strip()
    return len(bare) <= _SHORT_SIGNATURE_CHARS and len(bare.split()) <= _SHORT_SIGNATURE_WORDS


def _signature_at(lines: Lines, index: int) -> bool:
    line = lines.detect[index]
    if _DELIMITER.match(line):
        return True
    if _OUTLOOK_SEPARATOR.match(line) and index > 0 and lines.blank(index - 1):
        return True
    if not _short(line):
        return False
    return library_rules().sent_from.match(line) is not None or any(
        pattern.match(line) for pattern in _MOBILE_SIGNATURES
    )


def _signature(lines: Lines, start: int, stop: int) -> int | None:
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


def _has_content(lines: Lines, indices: Sequence[int]) -> bool:
    """Whether any of these lines is text: not blank, not quoted, not a mere separator."""
    return any(
        not lines.quoted(index) and not _is_decoration(lines.original[index]) for index in indices
    )


def _kept_lines(lines: Lines) -> list[int]:
    headers = quote_headers(lines)
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
        elif followed_by_quote(lines, last):
            after = last + 1
            while after < len(lines.detect) and (lines.blank(after) or lines.quoted(after)):
                after += 1
            position = after  # the header's quote is dropped; an interleaved answer may follow
        else:
            return kept  # top posting: the rest is history
    return kept


def _render(lines: Lines, kept: list[int]) -> str:
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
    return _DECORATION.match(line.translate(INVISIBLE)) is not None and "`" not in line


def _trim_text(text: str) -> str:
    lines = split_lines(text)
    return _render(lines, _kept_lines(lines))


# --- HTML --------------------------------------------------------------------------------------

_REPLY_HEADER_ID = re.compile(r"^(?:x_)?divRplyFwdMsg$")
_APPEND_ON_SEND_ID = re.compile(r"^(?:x_)?appendonsend$")
QUOTE_CONTAINERS = (
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
    for selector in QUOTE_CONTAINERS:
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
    lines = [line.rstrip() for line in LINE_BREAKS.split(text)]
    unquoted = [line for line in lines if not QUOTE.match(line)]
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
    `text` is the message's text (for HTML-only mail, intake.mail.parse already converted it
    from the HTML); when `html` is given and `text` is empty or was derived from it, the HTML's
    quote containers are removed first. `from_html` says whether it was, when the caller knows (else
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
