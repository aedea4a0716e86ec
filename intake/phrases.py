"""Phrase lists from settings, matched as whole words in any case, with the evidence kept.

Kinds of mail, urgent wording and the names of team members are all data in settings; matching
is here so that every decision can say which phrase, in which language, where in the message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from intake.parse import ParsedMessage


@dataclass(frozen=True)
class PhraseMatch:
    phrase: str
    language: str
    place: str

    def __str__(self) -> str:
        language = f" ({self.language})" if self.language else ""
        return f"{self.place} contains {self.phrase!r}{language}"


@lru_cache(maxsize=256)
def _pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    cleaned = sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    alternatives = "|".join(r"\s+".join(map(re.escape, p.split())) for p in cleaned)
    return re.compile(rf"(?<![\w@.+-])(?:{alternatives})(?![\w@-]|\.\w)", re.IGNORECASE)


def places(message: ParsedMessage) -> dict[str, str]:
    """The parts of a message phrases are looked for in."""
    return {
        "subject": message.subject,
        "body": message.text,
        "attachment_names": "\n".join(a.filename for a in message.attachments),
    }


def find(
    phrases: Mapping[str, Iterable[str]], where: Iterable[str], texts: Mapping[str, str]
) -> PhraseMatch | None:
    """The first phrase (any language) found in the named places of `texts`."""
    for place in where:
        text = texts.get(place, "")
        if not text:
            continue
        for language, listed in phrases.items():
            pattern = _pattern(tuple(listed))
            match = pattern.search(text) if pattern else None
            if match:
                return PhraseMatch(phrase=match.group(0), language=language, place=place)
    return None


def case_reference(prefix: str, text: str) -> str | None:
    """The first case reference (`COC-2026-0001`) written in `text`."""
    match = re.search(rf"(?<![\w-]){re.escape(prefix)}-\d{{4}}-\d+\b", text, re.IGNORECASE)
    return match.group(0).upper() if match else None
