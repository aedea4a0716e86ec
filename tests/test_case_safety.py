"""What a review of conversations and case handling found, each pinned by a test on real servers:
content never reaches a member the case excludes, a member who left, or a stranger who spoofs a
From; a careless autoresponder cannot loop or leak; odd authentication headers cannot park mail.
"""

from __future__ import annotations

from typing import Any

import pytest

from intake.mail.authentication import authentication_problem
from intake.mail.parse import parse_message
from intake.runtime.cycle import poll_once, running
from intake.settings.schema import Settings
from intake.store.models import EventKind, OutboundMessage, Party, TeamMember, Ticket, TicketEvent
from tests.mailroom import Mailroom, door, open_case, reply, to_only
from tests.servers import Dovecot, SmtpSink
from tests.support import base_settings, make_mail, settings_from


def addressed(sent: list[Any]) -> set[str]:
    return {str(m["To"]).split("<")[-1].rstrip(">") for m in sent}


async def test_general_mail_naming_a_member_is_kept_from_them(mailroom: Mailroom) -> None:
    sent = await mailroom.send(
        make_mail(subject="Sponsorship booth", body="Alice Lead grabbed my arm at the booth.")
    )
    ticket = await Ticket.get()
    assert ticket.kind == "general"
    assert (await Party.get(ticket=ticket, email="alice@example.org")).excluded
    sent = await mailroom.send(
        reply(to_only(sent, "sam@example.net"), "sam@example.net", "Yes, this is a report.")
    )
    assert "alice@example.org" not in addressed(sent)
    assert "bob@example.org" in addressed(sent)


async def test_a_follow_up_naming_the_assignee_takes_the_case_from_them(mailroom: Mailroom) -> None:
    ticket, ack, _ = await open_case(mailroom)
    assert ticket.assignee is not None
    holder = ticket.assignee
    other = "bob@example.org" if holder.email == "alice@example.org" else "alice@example.org"
    sent = await mailroom.send(
        reply(ack, "sam@example.net", f"I should add that {holder.name} laughed along.")
    )
    assert holder.email not in addressed(sent)
    assert to_only(sent, other)["Subject"] == f"[{ticket.ref}] Case handed over to you"
    refreshed = await Ticket.get(id=ticket.id).prefetch_related("assignee")
    assert refreshed.assignee is not None and refreshed.assignee.email == other


async def test_a_member_who_left_the_team_can_no_longer_write_into_a_case(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    await TeamMember.filter(id=ticket.assignee.id).update(active=False)
    sent = await mailroom.send(reply(notice, ticket.assignee.email, "Please call me on my mobile."))
    assert (await mailroom.last_outcome()).outcome == "rejected_excluded"
    assert sent == []


async def test_a_spoofed_from_on_an_appeal_learns_nothing_of_the_real_case(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    await mailroom.send(
        reply(notice, ticket.assignee.email, "#contact max@example.com reported\nYou are banned.")
    )
    await mailroom.send(reply(notice, ticket.assignee.email, "#resolve permanent-ban"))
    sent = await mailroom.send(
        make_mail(
            sender="max@example.com",
            subject="Appeal",
            body="I would like to appeal.",
            headers={"Reply-To": "eve@evil.example"},
        )
    )
    answer = to_only(sent, "eve@evil.example")
    assert "Which decision would you like to appeal?" in answer["Subject"]
    assert ticket.ref not in answer.as_string()


async def test_a_team_autoresponder_cannot_loop_on_confirmations_or_repeat_relays(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    member = ticket.assignee.email
    sent = await mailroom.send(reply(notice, member, "#status waiting"))
    confirmation = to_only(sent, member)
    away = "I am away until Monday."
    sent = await mailroom.send(reply(confirmation, member, away))  # a plain reply: team only
    assert "sam@example.net" not in addressed(sent)
    assert (await mailroom.last_outcome()).outcome == "appended_internal"
    sent = await mailroom.send(reply(confirmation, member, away))
    assert sent == []  # the same words again: not copied, and no confirmation to answer
    assert (await mailroom.last_outcome()).outcome == "appended_internal"
    # Even at the reporter door, an autoresponder's repeat is relayed once, not again.
    sent = await mailroom.send(reply(confirmation, member, "Back on Tuesday.", to=door(notice)))
    assert "sam@example.net" in addressed(sent)
    sent = await mailroom.send(reply(confirmation, member, "Back on Tuesday.", to=door(notice)))
    assert "sam@example.net" not in addressed(sent)
    assert (await mailroom.last_outcome()).outcome == "appended_internal"


async def test_a_reply_with_a_team_address_in_its_signature_is_not_relayed(
    mailroom: Mailroom,
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    member = ticket.assignee.email
    sent = await mailroom.send(
        reply(
            notice,
            member,
            f"Could you tell us more?\n\nBest,\n{member} | +49 170 555",
            to=door(notice),
        )
    )
    assert addressed(sent) == {member}
    assert "contains a team address" in sent[0].get_content()


async def test_a_command_written_with_a_space_is_still_a_command(mailroom: Mailroom) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    sent = await mailroom.send(reply(notice, ticket.assignee.email, "# note he is guilty"))
    assert addressed(sent) == {ticket.assignee.email}
    notes = await TicketEvent.filter(ticket=ticket, kind=EventKind.NOTE).values_list(
        "body", flat=True
    )
    assert "he is guilty" in notes


@pytest.mark.parametrize(
    ("results", "sender"),
    [
        ("mx.example.org; dmarc=pass header.from=attacker.example", None),
        ("mx.example.org; dmarc=pass header.from=example.org", "two"),
    ],
)
async def test_dmarc_must_pass_for_the_one_from_domain(
    mailroom: Mailroom, results: str, sender: str | None
) -> None:
    ticket, _, notice = await open_case(mailroom)
    assert ticket.assignee is not None
    member = ticket.assignee.email
    from_ = f"{member}, other@attacker.example" if sender == "two" else member
    await mailroom.send(
        reply(notice, from_, "Tell me more.", headers={"Authentication-Results": results})
    )
    assert (await mailroom.last_outcome()).outcome == "rejected_unauthenticated"


async def test_an_authentication_header_without_a_server_name_does_not_park_the_reply(
    imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str, tmp_path: Any
) -> None:
    imap_config["conversations"] = {"trusted_authserv_ids": ["mx.example.org"]}
    settings: Settings = settings_from(tmp_path, imap_config)
    async with running(settings):
        mailroom = Mailroom(settings, dovecot, sink, folder)
        ticket, _, notice = await open_case(mailroom)
        assert ticket.assignee is not None
        await mailroom.send(
            reply(
                notice,
                ticket.assignee.email,
                "Tell me more.",
                to=door(notice),
                headers={"Authentication-Results": "; dkim=fail"},
            )
        )
        assert (await mailroom.last_outcome()).outcome == "relayed"


async def test_a_reply_under_a_mangled_address_leaves_a_note_on_its_case(
    mailroom: Mailroom,
) -> None:
    ticket, ack, _ = await open_case(mailroom)
    party = await Party.get(ticket=ticket, role="reporter")
    stale = f"info+{ticket.id}-{party.id}-{'b' * 16}@example.org"
    await mailroom.send(reply(ack, "sam@example.net", "Still there?", to=stale))
    notes = await TicketEvent.filter(ticket=ticket, kind=EventKind.NOTE).values_list(
        "body", flat=True
    )
    assert any("rejected_forged_token" in str(body) for body in notes)


async def test_team_changes_reach_open_cases_at_start(tmp_path: Any) -> None:
    """A member who joins is kept from open cases that name them; a case whose holder left
    passes to the next eligible member, who is sent it."""
    data = base_settings(tmp_path)
    (tmp_path / "mail" / "new").mkdir(parents=True)
    settings = settings_from(tmp_path, data)
    (tmp_path / "mail" / "new" / "1.eml").write_bytes(
        make_mail(body="Carol New mocked me in the chat.")
    )
    async with running(settings):
        await poll_once(settings)
        ticket = await Ticket.get().prefetch_related("assignee")
        assert ticket.assignee is not None
        holder = ticket.assignee.email

    stays = "bob@example.org" if holder == "alice@example.org" else "alice@example.org"
    data["team"] = [m for m in data["team"] if m["email"] != holder]
    data["team"][0]["roles"] = ["lead"]
    data["team"].append({"name": "Carol New", "email": "carol@example.org", "roles": ["member"]})
    data["roster"]["rotation"] = [stays, "carol@example.org"]
    settings = settings_from(tmp_path, data)
    async with running(settings):
        refreshed = await Ticket.get(id=ticket.id).prefetch_related("assignee")
        assert refreshed.assignee is not None and refreshed.assignee.email == stays
        assert (await Party.get(ticket=ticket, email="carol@example.org")).excluded
        handover = await OutboundMessage.get(kind="handover")
        assert handover.recipients == [stays]


def test_a_comma_inside_an_encoded_name_is_still_one_from_address(tmp_path: Any) -> None:
    """Counting From addresses after decoding encoded words once refused such team replies."""
    settings = settings_from(tmp_path, base_settings(tmp_path))
    raw = (
        b"From: =?utf-8?q?Lead=2C_Alice?= <alice@example.org>\n"
        b"Authentication-Results: mx.example.org; dmarc=pass header.from=example.org\n"
        b"Subject: Re: x\n\nPlease tell us more.\n"
    )
    assert authentication_problem(parse_message(raw), settings) is None
