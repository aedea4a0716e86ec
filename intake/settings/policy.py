"""The Code of Conduct policy the settings file may change, and its defaults: case kinds, the
phrases that make mail an appeal, retaliation or general mail, urgent phrases, and the ladder of
resolutions. The data lives here so the schema stays a schema; the rules that use it live in
intake.conduct."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from intake.settings.types import Duration, Section, parse_duration


class CaseKind(StrEnum):
    """What a case is; stored in `ticket.kind`. Listed here once: the settings' kind rules, the
    handlers, `#kind` and the stats breakdown all name these."""

    REPORT = "report"
    APPEAL = "appeal"
    RETALIATION = "retaliation"
    GENERAL = "general"


RULE_KINDS = (CaseKind.APPEAL, CaseKind.RETALIATION, CaseKind.GENERAL)
Phrases = dict[str, tuple[str, ...]]  # language -> phrases; matched whole-word, any case
Place = Literal["subject", "body", "attachment_names"]


class KindRule(Section):
    """Mail whose subject or body (see `where`) holds one of the phrases is of this kind."""

    kind: CaseKind
    phrases: Phrases
    where: tuple[Place, ...] = ("subject", "body")
    # Retaliation: only a message that also refers to an earlier case (a reference in it, or a
    # reply to one of its emails) counts.
    needs_case_reference: bool = False

    @field_validator("kind", mode="before")
    @classmethod
    def _rule_kind(cls, kind: object) -> CaseKind:
        """A rule gives an appeal, retaliation or general mail; a report is what no rule claims."""
        if isinstance(kind, str) and kind in RULE_KINDS:
            return CaseKind(kind)
        raise ValueError("Input should be 'appeal', 'retaliation' or 'general'")


DEFAULT_KIND_RULES = (
    KindRule(
        kind=CaseKind.APPEAL,
        where=("subject",),
        phrases={
            "en": ("appeal", "appealing"),
            "de": ("Widerspruch", "Einspruch", "Berufung"),
            "fr": ("appel", "recours"),
            "es": ("apelación", "recurso"),
        },
    ),
    KindRule(
        kind=CaseKind.APPEAL,
        where=("body",),
        phrases={
            "en": (
                "I would like to appeal",
                "I wish to appeal",
                "I want to appeal",
                "I am appealing",
                "appeal the decision",
                "appeal this decision",
                "appeal against",
            ),
            "de": ("lege ich Widerspruch", "Widerspruch einlegen", "Einspruch einlegen"),
            "fr": ("faire appel", "contester la décision"),
            "es": ("apelar la decisión", "quiero apelar"),
        },
    ),
    KindRule(
        kind=CaseKind.RETALIATION,
        needs_case_reference=True,
        phrases={
            "en": (
                "retaliation",
                "retaliating",
                "retaliated",
                "because I reported",
                "since I reported",
                "for reporting",
                "revenge",
            ),
            "de": ("Vergeltung", "Rache", "weil ich gemeldet", "weil ich es gemeldet"),
            "fr": ("représailles", "parce que j'ai signalé"),
            "es": ("represalia", "represalias", "porque denuncié"),
        },
    ),
    KindRule(
        kind=CaseKind.GENERAL,
        where=("subject",),
        phrases={
            "en": ("unsubscribe", "sponsorship", "press inquiry", "media inquiry", "invoice"),
            "de": ("abmelden", "Sponsoring", "Presseanfrage", "Rechnung"),
        },
    ),
)

DEFAULT_URGENT_PHRASES: Phrases = {
    "en": (
        "kill",
        "killing",
        "hurt myself",
        "harm myself",
        "self-harm",
        "suicide",
        "suicidal",
        "end my life",
        "threatened to hurt",
        "threat of violence",
        "threatening violence",
        "going to hurt",
        "in danger",
        "unsafe",
        "doxxed",
        "doxxing",
        "doxed",
        "my home address",
        "stalking",
        "stalked",
        "weapon",
        "gun",
    ),
    "de": (
        "umbringen",
        "töten",
        "Selbstmord",
        "Suizid",
        "mir etwas antun",
        "bedroht",
        "Gewalt",
        "in Gefahr",
        "Wohnadresse",
        "gestalkt",
        "Waffe",
    ),
}


class Resolution(Section):
    """One rung of the resolution ladder, in order from mildest to most severe."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str
    appealable: bool = False
    duration: Duration | None = None  # for temporary measures


DEFAULT_RESOLUTIONS = (
    Resolution(name="no-action", description="No violation was found; no action is taken."),
    Resolution(name="correction", description="A private, written correction."),
    Resolution(name="warning", description="A private, written warning."),
    Resolution(
        name="temporary-ban",
        description="A temporary ban from community spaces.",
        duration=parse_duration("30d"),
    ),
    Resolution(
        name="permanent-ban",
        description="A permanent ban from community spaces.",
        appealable=True,
    ),
)
