"""The lines of a reply as the quote and signature rules read them, and the patterns they borrow
from mail-parser-reply (its quote headers in every language it knows, its "Sent from my ..."
lines). See intake.mail.quotes for what is done with them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from mailparser_reply import EmailReplyParser
from mailparser_reply.constants import MAIL_LANGUAGES
from mailparser_reply.parser import EmailMessage

# Headers are never longer than this; longer lines are cut in the copy used for detection only,
# which keeps the library's backtracking regexes linear on hostile one-line bodies.
_DETECT_LINE_LIMIT = 1000
LINE_BREAKS = re.compile(r"\r\n|\r|\n")
INVISIBLE = str.maketrans(
    {"\u200b": None, "\ufeff": None, "\u200e": None, "\u200f": None, "\xa0": " "}
)
QUOTE = re.compile(r"^\s*>")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class LibraryRules:
    header: re.Pattern[str]
    sent_from: re.Pattern[str]


@cache
def library_rules() -> LibraryRules:
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
    return LibraryRules(header=header, sent_from=sent_from_line)


# --- lines -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lines:
    original: list[str]  # as written, trailing spaces removed
    detect: list[str]  # stripped, invisible characters removed, cut to _DETECT_LINE_LIMIT
    code: list[bool]  # inside a closed ``` fence (fence lines included)

    def quoted(self, index: int) -> bool:
        return not self.code[index] and QUOTE.match(self.original[index]) is not None

    def blank(self, index: int) -> bool:
        return not self.detect[index]


def split_lines(text: str) -> Lines:
    original = [line.rstrip() for line in LINE_BREAKS.split(text)]
    detect = [line.translate(INVISIBLE).strip()[:_DETECT_LINE_LIMIT] for line in original]
    code = [False] * len(original)
    opened: int | None = None
    for index, line in enumerate(detect):
        if _FENCE.match(line):
            if opened is None:
                opened = index
            else:
                code[opened : index + 1] = [True] * (index + 1 - opened)
                opened = None
    return Lines(original, detect, code)
