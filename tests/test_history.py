"""Earlier cases, for the team: in the notice of a new case and by `#history`, never across an
exclusion. End to end on Dovecot and aiosmtpd."""

from __future__ import annotations

from email.message import EmailMessage

from intake.conduct.audit import trail
from intake.store.models import Ticket
from tests.mailroom import Mailroom, reply, to_only
from tests.support import make_mail

SAM = "Sam Reporter <sam@example.net>"
KIM = "Kim <kim@example.net>"
BOB = "bob@example.org"  # on duty in the test roster
ALICE = "alice@example.org"


async def report(room: Mailroom, sender: str, body: str) -> tuple[Ticket, list[EmailMessage]]:
    sent = await room.send(make_mail(sender=sender, body=body))
    inbound = await room.last_outcome()
    assert inbound.ticket is not None
    return await Ticket.get(id=inbound.ticket.id).prefetch_related("assignee"), sent


def notice_of(ticket: Ticket, sent: list[EmailMessage]) -> str:
    assert ticket.assignee is not None
    return to_only(sent, ticket.assignee.email).get_content()


async def test_the_notice_lists_earlier_cases_from_the_same_address(mailroom: Mailroom) -> None:
    first, _ = await report(mailroom, SAM, "Max insulted me in the forum.")
    second, sent = await report(mailroom, SAM, "Max did it again in the chat.")

    notice = notice_of(second, sent)
    assert "Earlier cases" in notice
    assert f"{first.ref} (report, new" in notice and "from the same address" in notice


async def test_the_notice_lists_earlier_cases_about_a_reported_person_it_names(
    mailroom: Mailroom,
) -> None:
    first, sent = await report(mailroom, SAM, "Someone insulted me in the forum.")
    notice = to_only(sent, BOB)
    await mailroom.send(
        reply(notice, BOB, "#contact max@example.com reported\nHello Max, a question.")
    )

    second, sent = await report(mailroom, KIM, "The user @max keeps sending me messages.")

    text = notice_of(second, sent)
    assert first.ref in text and "about max@example.com" in text
    third, sent = await report(mailroom, "Lee <lee@example.net>", "Nothing about anyone here.")
    assert "Earlier cases" not in notice_of(third, sent)


async def test_earlier_cases_never_cross_an_exclusion(mailroom: Mailroom) -> None:
    kept_from_bob, _ = await report(mailroom, SAM, "Bob Member shouted at me on the call.")
    assert kept_from_bob.assignee is not None and kept_from_bob.assignee.email == ALICE

    second, sent = await report(mailroom, SAM, "And now someone else is rude too.")

    assert second.assignee is not None and second.assignee.email == BOB
    assert kept_from_bob.ref not in notice_of(second, sent)
    notice = to_only(sent, BOB)
    answer = to_only(await mailroom.send(reply(notice, BOB, "#history sam@example.net")), BOB)
    assert second.ref in answer.get_content()
    assert kept_from_bob.ref not in answer.get_content()


async def test_history_answers_for_anyone_by_address_or_handle(mailroom: Mailroom) -> None:
    first, sent = await report(mailroom, SAM, "Someone insulted me in the forum.")
    notice = to_only(sent, BOB)
    await mailroom.send(reply(notice, BOB, "#contact max@example.com reported\nHello Max."))

    for who in ("max@example.com", "@max"):
        answer = to_only(await mailroom.send(reply(notice, BOB, f"#history {who}")), BOB)
        assert first.ref in answer.get_content(), who
        assert "about max@example.com" in answer.get_content(), who
    nobody = to_only(await mailroom.send(reply(notice, BOB, "#history nobody@example.com")), BOB)
    assert "No case from or about nobody@example.com" in nobody.get_content()


async def test_a_case_listed_to_a_member_says_so_in_its_audit_trail(mailroom: Mailroom) -> None:
    first, _ = await report(mailroom, SAM, "Max insulted me in the forum.")
    second, sent = await report(mailroom, SAM, "Max did it again in the chat.")
    assert second.assignee is not None
    member = second.assignee.email
    await mailroom.send(reply(to_only(sent, member), member, "#history sam@example.net"))

    listed = [(line.actor, line.what) for line in await trail(first) if line.action == "email"]
    assert (member, f"listed as an earlier case in the assignment notice of {second.ref}") in listed
    assert (member, "listed in the answer to #history sam@example.net") in listed
    own = [line for line in await trail(second) if "assignment notice" in line.what]
    assert not own  # a notice does not list its own case
