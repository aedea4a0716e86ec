"""Conflicts of interest: which team members a message names, and so must never see its case.

A member is named by their address, their name, or any configured alias or handle, in any case,
as whole words, in the subject, the text or an attachment's file name. Matching errs on the safe
side: a report that merely greets a member by name keeps it from that member too, and the leads
can still reassign by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.mail.parse import ParsedMessage
from intake.mail.phrases import PhraseMatch, Places, find, places
from intake.settings.schema import Settings, TeamMember

WHERE = ("subject", "body", "attachment_names")


@dataclass(frozen=True)
class Conflict:
    member: TeamMember
    evidence: PhraseMatch

    def __str__(self) -> str:
        return f"{self.member.email} is named: {self.evidence}"


def named_members(settings: Settings, message: ParsedMessage) -> list[Conflict]:
    """The members the message names."""
    return named_members_in(settings, places(message))


def named_members_in(settings: Settings, texts: Places) -> list[Conflict]:
    """The members named in these texts."""
    conflicts = []
    for member in settings.team:
        match = find({"": member.names()}, WHERE, texts)
        if match is not None:
            conflicts.append(Conflict(member=member, evidence=match))
    return conflicts
