"""Each rule of the screen (`intake.engine.screen`) and of the case rules (`intake.conduct.rules`),
what triggers it, and the order they are asked in.

A human report read as machine mail is lost silently; machine mail read as a report gets an
answer and can start a loop. Both directions are tested here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from intake.conduct.kinds import MailKind
from intake.conduct.rules import CASE_ORDER, CASE_RULES, RuleContext, decide
from intake.engine.contract import Verdict
from intake.engine.link import CaseLink, Via
from intake.engine.screen import SCREEN_ORDER, SCREEN_RULES, MachineMail, screen
from intake.mail.parse import ParsedMessage, parse_message
from intake.settings.policy import DEFAULT_KIND_RULES
from intake.store.models import Party, PartyRole, Ticket, TicketStatus
from tests.support import classify as decided
from tests.support import make_mail

OWN = "info@example.org"
OWN_ADDRESSES = frozenset({OWN})
CONTEXT = RuleContext(kind_rules=DEFAULT_KIND_RULES)
RULES = SCREEN_ORDER + CASE_ORDER  # the order the pipeline asks them in


def raw_mail(*header_lines: str, body: str = "Hello.\n") -> bytes:
    return ("\n".join(header_lines) + "\n\n" + body).encode()


def person(**headers: str) -> bytes:
    """An ordinary message from a person, with extra headers."""
    return make_mail(headers=headers)


def classify(message: ParsedMessage, link: CaseLink | None = None) -> Verdict:
    return decided(message, link, DEFAULT_KIND_RULES)


def verdict_of(raw: bytes, link: CaseLink | None = None) -> Verdict:
    return classify(parse_message(raw), link)


def fires(rule: str, message: ParsedMessage) -> bool:
    """The rule alone, on a message pointing at no case."""
    if rule in SCREEN_RULES:
        return SCREEN_RULES[rule](message, OWN_ADDRESSES) is not None
    return CASE_RULES[rule](message, None, CONTEXT) is not None


def link(
    role: PartyRole | None,
    *,
    excluded: bool = False,
    forged: str | None = None,
    status: TicketStatus = TicketStatus.NEW,
) -> CaseLink:
    """What intake.engine.link found: a case, and the sender's party on it (unsaved rows)."""
    party = None if role is None else Party(role=role, email="x@example.net", excluded=excluded)
    ticket = Ticket(ref="COC-2026-0001", status=status)
    return CaseLink(ticket=ticket, via=Via.TOKEN, party=party, forged=forged)


@dataclass(frozen=True)
class Case:
    raw: bytes
    kind: MachineMail | MailKind
    reason: str  # a part of the reason that names the evidence
    link: CaseLink | None = None


DSN = raw_mail(
    "From: Mail Delivery System <mta@example.com>",
    "Subject: Your message",
    'Content-Type: multipart/report; report-type="delivery-status"; boundary="B"',
    body="--B\nContent-Type: text/plain\n\nfailed\n--B\n"
    "Content-Type: message/delivery-status\n\nAction: failed\n--B--\n",
)

# One message per rule; each also carries nothing that an earlier rule would catch.
CASES: dict[str, Case] = {
    "own_address": Case(
        raw_mail(f"From: Example Team <{OWN.upper()}>", "Subject: copy"),
        MachineMail.OWN_ADDRESS,
        f"own address {OWN}",
    ),
    "delivery_report": Case(DSN, MachineMail.BOUNCE, "report-type=delivery-status"),
    "auto_submitted": Case(
        person(**{"Auto-Submitted": "auto-replied"}),
        MachineMail.AUTO_REPLY,
        "Auto-Submitted: auto-replied",
    ),
    "empty_return_path": Case(
        raw_mail("Return-Path: < >", "From: someone@example.net", "Subject: x"),
        MachineMail.BOUNCE,
        "empty Return-Path",
    ),
    "null_from": Case(
        raw_mail("From: MAILER-DAEMON <>", "Subject: Mail delivery problem"),
        MachineMail.BOUNCE,
        "null From address",
    ),
    "role_sender": Case(
        raw_mail("From: Mail Delivery Subsystem <MAILER-DAEMON>", "Subject: Returned"),
        MachineMail.BOUNCE,
        "role address mailer-daemon",
    ),
    "precedence": Case(person(Precedence="bulk"), MachineMail.BULK, "Precedence: bulk"),
    "list_headers": Case(
        person(**{"List-Id": "<announce.example.net>"}), MachineMail.BULK, "List-Id"
    ),
    "vendor_auto_reply": Case(
        person(**{"X-Autoreply": "yes"}), MachineMail.AUTO_REPLY, "X-Autoreply header"
    ),
    "complaint_subject": Case(
        raw_mail("From: staff@hotmail.com", "Subject:  complaint about message from 192.0.2.222"),
        MachineMail.BOUNCE,
        "abuse-complaint subject",
    ),
    "ooo_subject": Case(
        make_mail(subject="Automatic reply: Harassment on the forum"),
        MachineMail.AUTO_REPLY,
        "automatic-reply subject",
    ),
    "forged_token": Case(
        make_mail(), MailKind.FORGED, "does not verify", link(None, forged="token does not verify")
    ),
    "excluded": Case(
        make_mail(),
        MailKind.EXCLUDED,
        "excluded from the case",
        link(PartyRole.TEAM, excluded=True),
    ),
    "team_reply": Case(make_mail(), MailKind.TEAM_REPLY, "from team member", link(PartyRole.TEAM)),
    "appeal": Case(
        make_mail(subject="Appeal of my ban"), MailKind.APPEAL, "subject contains 'appeal'"
    ),
    "followup": Case(
        make_mail(), MailKind.FOLLOWUP, "the case's reporter", link(PartyRole.REPORTER)
    ),
    "kind_phrases": Case(
        make_mail(body="Since COC-2026-0001 he attacks me because I reported him."),
        MailKind.RETALIATION,
        "body contains 'because I reported' (en)",
    ),
    "notice_reply": Case(
        make_mail(),
        MailKind.NOTICE_REPLY,
        "a reply to Intake's mail about no case",
        CaseLink(ticket=None, via=Via.MESSAGE_ID, notice=True),
    ),
    "report": Case(make_mail(), MailKind.REPORT, "new mail from a person"),
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == set(RULES) == {*SCREEN_RULES, *CASE_RULES}


@pytest.mark.parametrize("rule", list(CASES))
def test_rule_fires_with_its_kind_and_reason(rule: str) -> None:
    case = CASES[rule]
    verdict = verdict_of(case.raw, case.link)
    assert verdict.rule == rule
    assert verdict.kind == case.kind
    assert case.reason in verdict.reason


@pytest.mark.parametrize("rule", [name for name in CASES if name != "report"])
def test_rule_alone_matches_only_its_case(rule: str) -> None:
    """Each rule says nothing about an ordinary report, so every case above is that rule's doing."""
    ordinary = parse_message(make_mail())
    assert not fires(rule, ordinary)


# --- details of single rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report_type", "kind"),
    [
        ("delivery-status", MachineMail.BOUNCE),
        ("feedback-report", MachineMail.BOUNCE),
        ("disposition-notification", MachineMail.BOUNCE),
        ("something-else", MachineMail.AUTO_REPLY),
    ],
)
def test_delivery_report_types(report_type: str, kind: str) -> None:
    raw = DSN.replace(b"delivery-status", report_type.encode())
    verdict = verdict_of(raw)
    assert (verdict.rule, verdict.kind) == ("delivery_report", kind)


def test_auto_submitted_no_is_a_person() -> None:
    assert verdict_of(person(**{"Auto-Submitted": "no"})).kind == MailKind.REPORT


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("MAILER-DAEMON@mx.example.com", MachineMail.BOUNCE),
        ("postmaster@example.com", MachineMail.BOUNCE),
        ("post_master@vtext.example.com", MachineMail.BOUNCE),
        ("mailer_daemon@example.com", MachineMail.BOUNCE),
        ("noreply@example.com", MachineMail.BULK),
        ("no-reply@example.com", MachineMail.BULK),
        ("do-not-reply@example.com", MachineMail.BULK),
        ("bounces+abc=example.org@example.com", MachineMail.BULK),
    ],
)
def test_role_senders(address: str, kind: str) -> None:
    verdict = verdict_of(raw_mail(f"From: {address}", "Subject: Re: Test message"))
    assert (verdict.rule, verdict.kind) == ("role_sender", kind)


def test_role_reply_to_counts_too() -> None:
    verdict = verdict_of(person(**{"Reply-To": "noreply@example.com"}))
    assert (verdict.rule, verdict.kind) == ("role_sender", MachineMail.BULK)


@pytest.mark.parametrize("name", ["X-MLServer", "X-ML-Name", "X-Mailman-Version", "Mailing-List"])
def test_list_software_headers(name: str) -> None:
    verdict = verdict_of(person(**{name: "fml [fml 4.0.3 release]"}))
    assert (verdict.rule, verdict.kind) == ("list_headers", MachineMail.BULK)


@pytest.mark.parametrize("origin", ["192.0.2.222", "2001:db8::1"])
def test_complaint_subject_needs_an_ip_address(origin: str) -> None:
    verdict = verdict_of(make_mail(subject=f"complaint about message from {origin}"))
    assert (verdict.rule, verdict.kind) == ("complaint_subject", MachineMail.BOUNCE)


def test_apple_vacation_header() -> None:
    verdict = verdict_of(person(**{"X-Apple-Action": "VACATION"}))
    assert (verdict.rule, verdict.kind) == ("vendor_auto_reply", MachineMail.AUTO_REPLY)
    assert verdict_of(person(**{"X-Apple-Action": "SOMETHING"})).kind == MailKind.REPORT


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Automatic reply: Harassment report", MachineMail.AUTO_REPLY),
        ("Auto reply: Nyaan", MachineMail.AUTO_REPLY),
        ("AutoReply", MachineMail.AUTO_REPLY),
        ("Out of Office: your message", MachineMail.AUTO_REPLY),
        ("Out of Office AutoReply: your message", MachineMail.AUTO_REPLY),
        ("Abwesenheitsnotiz: Ihre Nachricht", MachineMail.AUTO_REPLY),
        ("Automatische Antwort: Ihre Nachricht", MachineMail.AUTO_REPLY),
        ("Réponse automatique : votre message", MachineMail.AUTO_REPLY),
        ("Delivery Status Notification (Failure)", MachineMail.BOUNCE),
        ("Undeliverable: Harassment report", MachineMail.BOUNCE),
        ("Undelivered Mail Returned to Sender", MachineMail.BOUNCE),
        ("Returned mail: see transcript for details", MachineMail.BOUNCE),
        ("Mail delivery failed: returning message to sender", MachineMail.BOUNCE),
        ("Mail delivery failed", MachineMail.BOUNCE),
        ("failure notice", MachineMail.BOUNCE),
    ],
)
def test_machine_subjects(subject: str, kind: str) -> None:
    verdict = verdict_of(make_mail(subject=subject))
    assert (verdict.rule, verdict.kind) == ("ooo_subject", kind)


# --- people must stay people ------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Absence of moderation in #general",
        "Absent moderators again",
        "Vacation meetup: a participant harassed me",
        "Away from keyboard, someone used my account",
        "Out-of-office party incident",
        "Out of office hours someone kept messaging me",
        "Undelivered promises of the organisers",
        "Mail delivery failed for my first report, so again",
        "Re: Automatic reply: Harassment on the forum",
        "Fwd: Returned mail: see transcript for details",
        "Complaint about message from John in the chat",
        "Complaint about message from Abe",
        "complaint about message from dad",
        "Delivery of the talk was insulting",
    ],
)
def test_subjects_people_write_stay_reports(subject: str) -> None:
    assert verdict_of(make_mail(subject=subject)).kind == MailKind.REPORT


def test_x_auto_response_suppress_alone_is_a_person() -> None:
    """Exchange puts it on ordinary mail; it asks others not to auto-reply, and says no more."""
    verdict = verdict_of(person(**{"X-Auto-Response-Suppress": "DR, RN, NRN, OOF, AutoReply"}))
    assert verdict.kind == MailKind.REPORT


def test_a_person_forwarding_a_bounce_is_a_person() -> None:
    raw = make_mail(
        subject="Fwd: Returned mail: see transcript for details",
        body="My mail to the moderators bounced, see below.\n\n"
        "> From: Mail Delivery Subsystem <MAILER-DAEMON>\n"
        "> Auto-Submitted: auto-replied\n"
        "> Return-Path: <>\n",
    )
    assert verdict_of(raw).kind == MailKind.REPORT


def test_a_person_attaching_a_message_is_a_person() -> None:
    """The headers of an attached message (message/rfc822) are not the message's own."""
    raw = raw_mail(
        "From: Sam <sam@example.net>",
        "Subject: original as attachment",
        'Content-Type: multipart/mixed; boundary="B"',
        body="--B\nContent-Type: text/plain\n\nSee the attached bounce.\n--B\n"
        "Content-Type: message/rfc822\nContent-Disposition: attachment\n\n"
        "From: MAILER-DAEMON <>\nAuto-Submitted: auto-generated\nPrecedence: bulk\n"
        "Subject: Undeliverable: x\n\nfailed\n--B--\n",
    )
    verdict = verdict_of(raw)
    assert verdict.kind == MailKind.REPORT
    assert parse_message(raw).header("Precedence") is None


def test_body_lines_are_not_headers_whatever_the_line_ending() -> None:
    for end in ("\n", "\r\n", "\r"):
        raw = end.join(
            ["From: sam@example.net", "Subject: report", "", "Precedence: bulk", "List-Id: <x>"]
        )
        assert verdict_of(raw.encode()).kind == MailKind.REPORT, repr(end)


def test_a_message_without_from_is_a_report() -> None:
    assert verdict_of(raw_mail("Subject: anonymous tip")).kind == MailKind.REPORT


# --- order ------------------------------------------------------------------------------------


def test_own_address_comes_before_everything() -> None:
    raw = DSN.replace(b"mta@example.com", OWN.encode()).replace(
        b"Subject:", b"Auto-Submitted: auto-replied\nPrecedence: bulk\nSubject:"
    )
    message = parse_message(raw)
    matching = [name for name in RULES if fires(name, message)]
    assert matching[0] == "own_address"
    assert {"delivery_report", "auto_submitted", "precedence"} <= set(matching)
    assert classify(message).rule == "own_address"


def test_order_is_fixed_with_report_last() -> None:
    assert RULES[0] == "own_address"
    assert RULES[-1] == "report"
    assert RULES.index("delivery_report") < RULES.index("ooo_subject")


def test_rules_can_be_narrowed_and_fall_back_to_report() -> None:
    message: ParsedMessage = parse_message(person(Precedence="bulk"))
    verdict = screen(message, OWN_ADDRESSES, rules=("precedence",))
    assert verdict is not None and verdict.rule == "precedence"
    assert screen(message, OWN_ADDRESSES, rules=("own_address",)) is None
    fallback = decide(message, None, CONTEXT, rules=("followup",))
    assert (fallback.kind, fallback.rule) == (MailKind.REPORT, "default")


# --- mail that points at a case ------------------------------------------------------------------


def test_a_stranger_pointing_at_a_case_is_a_new_report() -> None:
    assert verdict_of(make_mail(), link(None)).kind == MailKind.REPORT


def test_machine_mail_to_a_reply_address_is_still_machine_mail() -> None:
    """An autoresponder answering our relay carries a valid token: it must not join the case."""
    auto_reply = person(**{"Auto-Submitted": "auto-replied"})
    assert verdict_of(auto_reply, link(PartyRole.REPORTER)).kind == MachineMail.AUTO_REPLY
    assert verdict_of(auto_reply, link(PartyRole.TEAM)).kind == MachineMail.AUTO_REPLY


def test_an_excluded_member_is_refused_before_being_read_as_a_team_reply() -> None:
    assert verdict_of(make_mail(), link(PartyRole.TEAM, excluded=True)).kind == MailKind.EXCLUDED


def test_retaliation_wording_without_an_earlier_case_is_a_report() -> None:
    assert verdict_of(make_mail(body="He did it for revenge.")).kind == MailKind.REPORT


def test_retaliation_in_a_message_pointing_at_a_case_by_its_headers() -> None:
    message = make_mail(body="He did it for revenge.")
    assert verdict_of(message, link(None)).kind == MailKind.RETALIATION


def test_general_mail_is_recognised_by_its_subject_only() -> None:
    assert (
        verdict_of(make_mail(subject="Sponsorship for the 2027 conference")).kind
        == MailKind.GENERAL
    )
    assert (
        verdict_of(make_mail(body="Our sponsorship manager harassed me.")).kind == MailKind.REPORT
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(TicketStatus.INVESTIGATING, MailKind.FOLLOWUP), (TicketStatus.RESOLVED, MailKind.APPEAL)],
)
def test_appeal_wording_from_a_party_is_an_appeal_only_once_the_case_is_decided(
    status: TicketStatus, kind: str
) -> None:
    message = make_mail(body="I would like to appeal the ban.")
    assert verdict_of(message, link(PartyRole.REPORTED, status=status)).kind == kind


def test_a_team_member_writing_appeal_is_still_a_team_reply() -> None:
    message = make_mail(body="I would like to appeal to everyone to be patient.")
    team = link(PartyRole.TEAM, status=TicketStatus.RESOLVED)
    assert verdict_of(message, team).kind == MailKind.TEAM_REPLY
