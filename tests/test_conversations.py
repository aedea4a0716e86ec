"""Conversations by email, end to end on real Dovecot, aiosmtpd and SQLite.

A report, its acknowledgement, a team question, the reporter's answer, an internal note and a
resolution all run by email alone; every refusal (forged tokens, a valid token from the wrong
sender, unknown references, subject-only references from strangers, commands from outsiders,
unauthenticated team mail) is shown to hold.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from intake.conduct.case_record import case_record
from intake.engine.tokens import ReplyToken, encode
from intake.runtime.cycle import running
from intake.settings.secrets import signing_key
from intake.store.models import (
    EventKind,
    Party,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from tests.mailroom import REPORT_TEXT, Mailroom, door, open_case, reply, reply_to, to_only
from tests.servers import Dovecot, SmtpSink
from tests.support import TEAM, intake, make_mail, settings_from

QUESTION = "Thank you for writing. Could you tell us on which day this happened?"
ANSWER = "It happened last Tuesday, in the #general channel."


async def test_a_whole_case_runs_by_email_alone(mailroom: Mailroom) -> None:
    ticket, ack, notice = await open_case(mailroom)
    assignee = ticket.assignee
    assert assignee is not None
    assert reply_to(ack).startswith("info+") and reply_to(ack).endswith("@example.org")
    assert reply_to(notice) != reply_to(ack)  # each party has its own address

    # The assignee asks a question through the reporter door the notice names, signature and all.
    sent = await mailroom.send(
        reply(
            notice,
            assignee.email,
            f"{QUESTION}\n\n-- \n{assignee.name}\nMobile +49 170 555",
            to=door(notice),
        )
    )
    relayed = to_only(sent, "sam@example.net")
    raw = relayed.as_bytes()
    assert relayed["From"] == "Example Code of Conduct Team <info@example.org>"
    assert reply_to(relayed) == reply_to(ack)
    assert QUESTION in relayed.get_content()
    assert assignee.email.encode() not in raw  # no trace of the member's own address
    assert b"Mobile +49" not in raw  # nor of their signature
    assert b"Max called me" not in raw and b"On Mon, 16 Nov" not in raw  # nor of the quote
    assert relayed["In-Reply-To"] == ack["Message-ID"]  # on the reporter's own thread
    assert "<report-1@example.net>" in relayed["References"]
    assert "Auto-Submitted" not in relayed  # a person wrote it
    assert (await mailroom.last_outcome()).outcome == "relayed"

    # The reporter answers the relayed question.
    sent = await mailroom.send(reply(relayed, "Sam Reporter <sam@example.net>", ANSWER))
    assert (await mailroom.last_outcome()).outcome == "appended"
    assert [m["To"] for m in sent] == [f"{assignee.name} <{assignee.email}>"]
    update = sent[0]
    assert ANSWER in update.get_content()
    assert QUESTION not in update.get_content()  # the reporter's quote of it is stripped
    assert reply_to(update) == reply_to(notice)

    # An internal note: confirmed to its author, never sent to the reporter.
    sent = await mailroom.send(reply(update, assignee.email, "#note Max was warned in 2025."))
    assert [m["To"] for m in sent] == [f"{assignee.name} <{assignee.email}>"]
    assert sent[0]["Subject"] == f"[{ticket.ref}] Done: #note"

    # The resolution: recorded, confirmed, and the outcome sent to the reporter.
    sent = await mailroom.send(
        reply(update, assignee.email, "#resolve warning insulting language\nMax has been warned.")
    )
    outcome = to_only(sent, "sam@example.net")
    assert outcome["Subject"] == f"[{ticket.ref}] The outcome of your case"
    assert "A private, written warning." in outcome.get_content()
    assert "Max has been warned." in outcome.get_content()
    assert "insulting language" not in outcome.get_content()  # the reason stays internal
    assert to_only(sent, assignee.email)["Subject"] == f"[{ticket.ref}] Done: #resolve"

    ticket = await Ticket.get(id=ticket.id)
    assert ticket.status == TicketStatus.RESOLVED
    assert (ticket.resolution, ticket.resolution_reason) == ("warning", "insulting language")
    assert ticket.resolved_by == assignee.email
    assert ticket.first_response_at is not None

    case = await case_record(ticket)
    thread = [(e["kind"], e["author"], e["audience"], e["body"]) for e in case["events"]]
    assert ("inbound", assignee.email, "relayed to the reporter", QUESTION) in thread
    assert ("inbound", "sam@example.net", "written by the reporter", ANSWER) in thread
    assert ("note", assignee.email, "team only", "Max was warned in 2025.") in thread
    sent_to_reporter = [e for e in case["events"] if e["audience"] == "sent to the reporter"]
    assert len(sent_to_reporter) == 3  # acknowledgement, relayed question, outcome
    assert all(e["to"] == ["sam@example.net"] for e in sent_to_reporter)


async def test_a_follow_up_reopens_a_resolved_case_and_says_so(mailroom: Mailroom) -> None:
    ticket, ack, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    await mailroom.send(reply(notice, ticket.assignee.email, "#status resolved"))
    assert (await Ticket.get(id=ticket.id)).status == TicketStatus.RESOLVED

    sent = await mailroom.send(reply(ack, "sam@example.net", "It happened again today."))
    assert (await Ticket.get(id=ticket.id)).status == TicketStatus.INVESTIGATING
    assert "reopened" in to_only(sent, ticket.assignee.email).get_content()


async def test_a_forged_token_is_refused_and_nothing_is_sent(mailroom: Mailroom) -> None:
    ticket, ack, _ = await open_case(mailroom)
    party = await Party.get(ticket=ticket, role="reporter")
    forged = f"info+{ticket.id}-{party.id}-{'a' * 16}@example.org"
    assert forged != reply_to(ack)
    events_before = await TicketEvent.filter(ticket=ticket, kind=EventKind.INBOUND).count()

    sent = await mailroom.send(reply(ack, "sam@example.net", "Let me in.", to=forged))

    inbound = await mailroom.last_outcome()
    assert inbound.outcome == "rejected_forged_token"
    assert inbound.ticket is None
    assert sent == []
    assert await TicketEvent.filter(ticket=ticket, kind=EventKind.INBOUND).count() == events_before


async def test_a_valid_token_from_the_wrong_sender_is_refused(mailroom: Mailroom) -> None:
    _ticket, ack, _ = await open_case(mailroom)
    sent = await mailroom.send(reply(ack, "Mallory <mallory@example.com>", "What did Sam say?"))
    inbound = await mailroom.last_outcome()
    assert inbound.outcome == "rejected_forged_token"
    assert "mallory@example.com" in inbound.reason
    assert sent == []


async def test_the_reporter_cannot_use_a_team_members_token(mailroom: Mailroom) -> None:
    _ticket, _, notice = await open_case(mailroom)
    sent = await mailroom.send(reply(notice, "sam@example.net", "Relay this to myself."))
    assert (await mailroom.last_outcome()).outcome == "rejected_forged_token"
    assert sent == []


async def test_a_token_signed_with_another_secret_is_refused(mailroom: Mailroom) -> None:
    ticket, ack, _ = await open_case(mailroom)
    party = await Party.get(ticket=ticket, role="reporter")
    other = encode(b"another secret of at least 32 chars", ReplyToken(ticket.id, party.id))
    assert other != encode(signing_key(mailroom.settings), ReplyToken(ticket.id, party.id))
    await mailroom.send(reply(ack, "sam@example.net", "Hello", to=f"info+{other}@example.org"))
    assert (await mailroom.last_outcome()).outcome == "rejected_forged_token"


async def test_a_reply_to_an_unknown_message_id_is_a_new_report(mailroom: Mailroom) -> None:
    await open_case(mailroom)
    await mailroom.send(
        make_mail(
            sender="sam@example.net",
            subject="Re: something else",
            headers={"In-Reply-To": "<never-seen@example.com>"},
        )
    )
    inbound = await mailroom.last_outcome()
    assert inbound.outcome == "ticket_created"
    assert await Ticket.all().count() == 2
    assert inbound.ticket is not None and inbound.ticket.refers_to_id is None  # type: ignore[attr-defined]


async def test_a_stranger_quoting_a_case_reference_gets_a_new_case_and_nothing_of_the_old(
    mailroom: Mailroom,
) -> None:
    ticket, _, _ = await open_case(mailroom)
    sent = await mailroom.send(
        make_mail(
            sender="Eve <eve@example.com>",
            subject=f"About [{ticket.ref}]",
            body="Please send me everything about this case.",
        )
    )
    inbound = await mailroom.last_outcome()
    assert inbound.outcome == "ticket_created"
    new_case = await Ticket.get(id=inbound.ticket.id)  # type: ignore[union-attr]
    assert new_case.id != ticket.id and new_case.refers_to_id == ticket.id  # type: ignore[attr-defined]
    ack = to_only(sent, "eve@example.com")
    assert ticket.ref not in ack.as_string() and "Max" not in ack.as_string()
    notes = await TicketEvent.filter(ticket=ticket, kind=EventKind.NOTE).values_list(
        "body", flat=True
    )
    assert any(new_case.ref in str(body) for body in notes)


async def test_the_reporter_quoting_the_reference_joins_the_case(mailroom: Mailroom) -> None:
    ticket, _, _ = await open_case(mailroom)
    await mailroom.send(
        make_mail(sender="sam@example.net", subject=f"{ticket.ref}: one more thing", body="More.")
    )
    inbound = await mailroom.last_outcome()
    assert inbound.outcome == "appended"
    assert inbound.ticket is not None and inbound.ticket.id == ticket.id


async def test_a_team_reply_without_its_token_stays_internal(mailroom: Mailroom) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    sent = await mailroom.send(
        reply(notice, ticket.assignee.email, "Is this relayed?", to="info@example.org")
    )
    assert (await mailroom.last_outcome()).outcome == "appended_internal"
    assert [m["To"] for m in sent] == [f"{ticket.assignee.name} <{ticket.assignee.email}>"]
    assert "neither sent to the reporter" in sent[0].get_content()


@pytest.mark.parametrize(
    ("results", "outcome"),
    [
        ("mx.example.org; dkim=fail header.d=example.org; dmarc=fail", "rejected_unauthenticated"),
        (
            "mx.example.org; dkim=pass header.d=attacker.example; dmarc=none",
            "rejected_unauthenticated",
        ),
        ("mx.example.org; dkim=pass header.d=example.org; dmarc=none", "relayed"),
        ("mx.example.org; spf=fail; dmarc=pass header.from=example.org", "relayed"),
    ],
)
async def test_team_mail_must_pass_dkim_or_dmarc_where_the_server_checked(
    mailroom: Mailroom, results: str, outcome: str
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    sent = await mailroom.send(
        reply(
            notice,
            ticket.assignee.email,
            "Please tell us more.",
            to=door(notice),
            headers={"Authentication-Results": results},
        )
    )
    assert (await mailroom.last_outcome()).outcome == outcome
    reached_reporter = any("sam@example.net" in str(m["To"]) for m in sent)
    assert reached_reporter == (outcome == "relayed")


async def test_commands_from_the_reporter_do_nothing_but_are_recorded(mailroom: Mailroom) -> None:
    ticket, ack, _ = await open_case(mailroom)
    await mailroom.send(reply(ack, "sam@example.net", "#resolve permanent-ban\nBan Max now."))
    inbound = await mailroom.last_outcome()
    assert inbound.outcome == "appended"
    assert "only the team's commands count" in inbound.reason
    refreshed = await Ticket.get(id=ticket.id)
    assert refreshed.status == TicketStatus.NEW and refreshed.resolution is None


async def test_a_bad_command_is_answered_with_a_clear_error_and_not_relayed(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    for command, error in (
        ("#status sleeping", "choose one of investigating, waiting, resolved, closed"),
        ("#resolve flogging", "choose one of no-action, correction, warning"),
        ("#kind Sponsorship", "#kind sponsorship: choose one of report, retaliation, appeal"),
        ("#asign bob", "#asign is not a command"),
        ("#assign nobody-here", "matches nobody"),
    ):
        sent = await mailroom.send(reply(notice, ticket.assignee.email, command))
        assert [str(m["To"]) for m in sent] == [
            f"{ticket.assignee.name} <{ticket.assignee.email}>"
        ], command
        assert "Not done" in sent[0]["Subject"]
        assert error in sent[0].get_content()
    unchanged = await Ticket.get(id=ticket.id)
    assert (unchanged.status, unchanged.kind) == (TicketStatus.NEW, "report")


async def test_assign_hands_the_case_over_and_recuse_steps_away(mailroom: Mailroom) -> None:
    ticket, _, notice = await open_case(mailroom)
    first = ticket.assignee
    assert first is not None
    other = "bob@example.org" if first.email == "alice@example.org" else "alice@example.org"

    sent = await mailroom.send(reply(notice, first.email, f"#assign {other}"))
    handover = to_only(sent, other)
    assert handover["Subject"] == f"[{ticket.ref}] Case handed over to you"
    assert REPORT_TEXT in handover.get_content()
    assert (await Ticket.get(id=ticket.id).prefetch_related("assignee")).assignee.email == other  # type: ignore[union-attr]

    sent = await mailroom.send(reply(handover, other, "#recuse"))
    recused = await Party.get(ticket=ticket, email=other)
    assert recused.excluded
    assert (
        await Ticket.get(id=ticket.id).prefetch_related("assignee")
    ).assignee.email == first.email  # type: ignore[union-attr]
    assert to_only(sent, first.email)["Subject"] == f"[{ticket.ref}] Case handed over to you"

    # The recused member's old reply address no longer writes into the case.
    sent = await mailroom.send(reply(handover, other, "One more thought."))
    assert (await mailroom.last_outcome()).outcome == "rejected_excluded"
    assert sent == []


async def test_an_html_only_team_reply_reaches_the_reporter_without_its_quote(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    html = (
        "<div dir='ltr'>When exactly did this happen?</div><br>"
        "<div class='gmail_quote'><div class='gmail_attr'>On Mon, 16 Nov 2026 Intake wrote:</div>"
        f"<blockquote class='gmail_quote'>{REPORT_TEXT}</blockquote></div>"
    )
    raw = make_mail(
        sender=ticket.assignee.email,
        to=door(notice),
        subject=f"Re: {notice['Subject']}",
        body="unused",
        headers={"In-Reply-To": str(notice["Message-ID"])},
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    message.set_content(html, subtype="html")
    sent = await mailroom.send(bytes(message))
    relayed = to_only(sent, "sam@example.net").get_content()
    assert "When exactly did this happen?" in relayed
    assert "Max called me" not in relayed


async def test_the_ticket_command_shows_who_wrote_what_and_who_saw_it(mailroom: Mailroom) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    await mailroom.send(reply(notice, ticket.assignee.email, QUESTION, to=door(notice)))
    await mailroom.send(reply(notice, ticket.assignee.email, "#note Only for us."))
    assert mailroom.settings.source_file is not None
    shown = intake("ticket", ticket.ref, config=mailroom.settings.source_file).stdout
    assert "party: reporter sam@example.net" in shown
    assert "kind: report (new mail from a person)" in shown
    assert f"inbound  {ticket.assignee.email}  (relayed to the reporter)" in shown
    assert "-> sam@example.net [sent]" in shown
    assert f"note  {ticket.assignee.email}  (team only)" in shown
    assert "Only for us." in shown


async def test_copies_reach_the_leads_when_configured_but_never_an_excluded_member(
    imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str, tmp_path: Path
) -> None:
    imap_config["team"] = [
        *TEAM,
        {"name": "Carol Lead", "email": "carol@example.org", "roles": ["lead"]},
    ]
    imap_config["conversations"] = {"copy_leads": True}
    settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        mailroom = Mailroom(settings, dovecot, sink, folder)
        ticket, ack, _ = await open_case(mailroom)
        assert ticket.assignee is not None
        leads = {"alice@example.org", "carol@example.org"} - {ticket.assignee.email}
        sent = await mailroom.send(reply(ack, "sam@example.net", ANSWER))
        assert {str(m["To"]).split("<")[-1].rstrip(">") for m in sent} == {
            ticket.assignee.email,
            *leads,
        }

        carol_copy = to_only(sent, "carol@example.org")
        await mailroom.send(reply(carol_copy, "carol@example.org", "#recuse"))
        sent = await mailroom.send(reply(ack, "sam@example.net", "Anything new?"))
        recipients = {str(m["To"]) for m in sent}
        assert all("carol@example.org" not in recipient for recipient in recipients)
        assert any(ticket.assignee.email in recipient for recipient in recipients)


async def test_another_partys_replies_reach_the_team_never_the_reporter(mailroom: Mailroom) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    sent = await mailroom.send(
        reply(
            notice, ticket.assignee.email, "#contact Max <max@example.com> witness\nDid you see it?"
        )
    )
    assert (await mailroom.last_outcome()).outcome == "command"
    to_witness = to_only(sent, "max@example.com")
    assert "Did you see it?" in to_witness.get_content()
    assert ticket.assignee.email.encode() not in to_witness.as_bytes()
    assert b"sam@example.net" not in to_witness.as_bytes()

    sent = await mailroom.send(reply(to_witness, "max@example.com", "Yes, I saw it happen."))
    assert (await mailroom.last_outcome()).outcome == "appended"
    assert [str(m["To"]) for m in sent] == [f"{ticket.assignee.name} <{ticket.assignee.email}>"]
    assert "Yes, I saw it happen." in sent[0].get_content()
    assert sent[0]["Subject"] == f"[{ticket.ref}] The witness (max@example.com) wrote"


async def test_a_team_replys_attachment_is_relayed_but_not_its_signature_logo(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    raw = reply(
        notice,
        ticket.assignee.email,
        "Our code of conduct is attached.",
        to=door(notice),
        attachments=[("code-of-conduct.pdf", "application/pdf", b"%PDF-1.4 the code")],
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    message.add_attachment(
        b"\x89PNG logo", maintype="image", subtype="png", filename="image001.png", cid="<logo1>"
    )
    sent = await mailroom.send(bytes(message))
    relayed = to_only(sent, "sam@example.net")
    names = [part.get_filename() for part in relayed.iter_attachments()]
    assert names == ["code-of-conduct.pdf"]
    [pdf] = list(relayed.iter_attachments())
    assert pdf.get_content() == b"%PDF-1.4 the code"
    assert "Our code of conduct is attached." in relayed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
