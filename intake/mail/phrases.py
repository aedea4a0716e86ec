"""Phrase lists from settings, matched as whole words in any case, with the evidence kept.

Kinds of mail, urgent wording and the names of team members are all data in settings; matching
is here so that every decision can say which phrase, in which language, where in the message.

Matching runs on every message against every list, so it is built for speed: each place is
lowercased and its whitespace collapsed once (`Places`), each phrase is found with `str.find`
(C speed; a regex alternation of many phrases costs milliseconds on a long report), and only
where it is found are its word boundaries checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from intake.mail.parse import ParsedMessage

# A phrase must not continue a word, an address or a handle on either side.
_BEFORE = re.compile(r"[\w@.+-]")
_AFTER = re.compile(r"[\w@-]")


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str
    language: str
    place: str

    def __str__(self) -> str:
        language = f" ({self.language})" if self.language else ""
        return f"{self.place} contains {self.phrase!r}{language}"


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


@lru_cache(maxsize=4096)
def _normal_phrase(phrase: str) -> str:
    return _normal(phrase)


@dataclass
class Places:
    """The parts of a message phrases are looked for in, normalised once."""

    texts: dict[str, str]
    _normal: dict[str, str] = field(default_factory=dict)

    def normal(self, place: str) -> str:
        if place not in self._normal:
            self._normal[place] = _normal(self.texts.get(place, ""))
        return self._normal[place]


@lru_cache(maxsize=2)
def places(message: ParsedMessage) -> Places:
    """Shared by the case rules, the urgency check and the conflict check of one message (they
    run one message at a time, so a tiny cache holds no more than the message in hand)."""
    return Places(
        {
            "subject": message.subject,
            "body": message.text,
            "attachment_names": "\n".join(a.filename for a in message.attachments),
        }
    )


def _whole_word_at(text: str, start: int, end: int) -> bool:
    if start > 0 and _BEFORE.match(text, start - 1):
        return False
    if end < len(text) and _AFTER.match(text, end):
        return False
    # "alice@example.org" is not named in "alice@example.org.uk"
    return not (text.startswith(".", end) and end + 1 < len(text) and text[end + 1].isalnum())


def _contains(text: str, phrase: str) -> bool:
    start = text.find(phrase)
    while start != -1:
        if _whole_word_at(text, start, start + len(phrase)):
            return True
        start = text.find(phrase, start + 1)
    return False


def find(
    phrases: Mapping[str, Iterable[str]], where: Iterable[str], texts: Places
) -> PhraseMatch | None:
    """The first phrase (any language) found in the named places."""
    for place in where:
        text = texts.normal(place)
        if not text:
            continue
        for language, listed in phrases.items():
            for phrase in listed:
                wanted = _normal_phrase(phrase)
                if wanted and _contains(text, wanted):
                    return PhraseMatch(phrase=phrase, language=language, place=place)
    return None
