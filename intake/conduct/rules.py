"""The case rules: what mail the screen let through is, given the case it points at.

Run after the engine's screen (machine mail) and link (which case). Each rule looks at the
message and the link and returns a Verdict or None; the first verdict wins, and the order is data
(`CASE_ORDER`). Mail no rule claims is a report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from intake.conduct.kinds import MailKind
from intake.engine.contract import Verdict
from intake.engine.link import CaseLink
from intake.mail.parse import ParsedMessage
from intake.mail.phrases import find, places
from intake.settings.policy import CaseKind, KindRule
from intake.settings.schema import Settings
from intake.store.models import DECIDED, PartyRole
from intake.store.references import reference_in


@dataclass(frozen=True)
class RuleContext:
    """What the rules may know besides the message and its link: `[classification] rules` (the
    phrases that make mail an appeal, retaliation or general mail) and the case reference prefix,
    for "refers to an earlier case"."""

    kind_rules: tuple[KindRule, ...] = ()
    case_prefix: str = "COC"

    @classmethod
    def of(cls, settings: Settings) -> RuleContext:
        return cls(
            kind_rules=settings.classification.rules,
            case_prefix=settings.organisation.ticket_prefix,
        )


CaseRule = Callable[[ParsedMessage, CaseLink | None, RuleContext], Verdict | None]


def rule_forged_token(_: ParsedMessage, link: CaseLink | None, __: RuleContext) -> Verdict | None:
    if link is not None and link.forged:
        return Verdict(MailKind.FORGED, link.forged, "forged_token")
    return None


def rule_excluded(_: ParsedMessage, link: CaseLink | None, __: RuleContext) -> Verdict | None:
    """A team member the case excludes (named in it, or recused) cannot write into it."""
    if link is not None and link.party is not None and link.party.excluded:
        reason = f"{link.party.email} is excluded from the case"
        return Verdict(MailKind.EXCLUDED, reason, "excluded")
    return None


def rule_team_reply(_: ParsedMessage, link: CaseLink | None, __: RuleContext) -> Verdict | None:
    if link is not None and link.party is not None and link.party.role == PartyRole.TEAM:
        reason = f"from team member {link.party.email}, found by {link.via}"
        return Verdict(MailKind.TEAM_REPLY, reason, "team_reply")
    return None


def rule_followup(_: ParsedMessage, link: CaseLink | None, __: RuleContext) -> Verdict | None:
    if link is not None and link.party is not None:
        party = link.party
        reason = f"from the case's {party.role} {party.email}, found by {link.via}"
        return Verdict(MailKind.FOLLOWUP, reason, "followup")
    return None


def refers_to_a_case(message: ParsedMessage, link: CaseLink | None, prefix: str) -> bool:
    """The message points at a case by its headers, or names a case reference."""
    if link is not None and link.ticket is not None:
        return True
    return reference_in(prefix, message.subject, message.text) is not None


def _kind_verdict(
    message: ParsedMessage,
    link: CaseLink | None,
    context: RuleContext,
    kinds: set[CaseKind],
    rule: str,
) -> Verdict | None:
    texts = places(message)
    for kind_rule in context.kind_rules:
        if kind_rule.kind not in kinds or (
            kind_rule.needs_case_reference
            and not refers_to_a_case(message, link, context.case_prefix)
        ):
            continue
        match = find(kind_rule.phrases, kind_rule.where, texts)
        if match is not None:
            kind = MailKind(kind_rule.kind.value)
            return Verdict(kind, f"{kind_rule.kind}: {match}", rule)
    return None


def rule_appeal(
    message: ParsedMessage, link: CaseLink | None, context: RuleContext
) -> Verdict | None:
    """An appeal: new mail, or a party's reply on a decided case, with appeal wording. A reply on
    a case still open is a follow-up, whatever its words."""
    if link is not None and link.party is not None:
        decided = link.ticket is not None and link.ticket.status in DECIDED
        if link.party.role == PartyRole.TEAM or not decided:
            return None
    return _kind_verdict(message, link, context, {CaseKind.APPEAL}, "appeal")


def rule_kind_phrases(
    message: ParsedMessage, link: CaseLink | None, context: RuleContext
) -> Verdict | None:
    """Retaliation complaints and general mail, by the phrases in settings."""
    if link is not None and link.party is not None:
        return None
    kinds = {CaseKind.RETALIATION, CaseKind.GENERAL}
    return _kind_verdict(message, link, context, kinds, "kind_phrases")


def rule_notice_reply(_: ParsedMessage, link: CaseLink | None, __: RuleContext) -> Verdict | None:
    """A reply to Intake's own mail that belongs to no case (a digest, an alert), by a person or
    an autoresponder: never a report, which would carry the quoted notice into a new case. (A
    reply to mail about a case is linked to that case, so it never gets here.)"""
    if link is not None and link.notice:
        reason = "a reply to Intake's mail about no case (a digest or an alert)"
        return Verdict(MailKind.NOTICE_REPLY, reason, "notice_reply")
    return None


def rule_report(_: ParsedMessage, __: CaseLink | None, ___: RuleContext) -> Verdict | None:
    return Verdict(MailKind.REPORT, "new mail from a person", "report")


CASE_RULES: Mapping[str, CaseRule] = {
    "forged_token": rule_forged_token,
    "excluded": rule_excluded,
    "team_reply": rule_team_reply,
    "notice_reply": rule_notice_reply,
    "appeal": rule_appeal,
    "followup": rule_followup,
    "kind_phrases": rule_kind_phrases,
    "report": rule_report,
}

CASE_ORDER: tuple[str, ...] = tuple(CASE_RULES)


def decide(
    message: ParsedMessage,
    link: CaseLink | None,
    context: RuleContext,
    rules: tuple[str, ...] = CASE_ORDER,
) -> Verdict:
    """The first verdict of `rules`, in order; a message no rule claims is a report."""
    for name in rules:
        verdict = CASE_RULES[name](message, link, context)
        if verdict is not None:
            return verdict
    return Verdict(MailKind.REPORT, "no rule matched", "default")
