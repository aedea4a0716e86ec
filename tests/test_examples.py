"""The two example organisations' processes, end to end by email on real servers.

Mautic: reports to info@, a ladder ending in a temporary ban and a permanent expulsion, and only
permanent resolutions appealable, by writing to the same address. FlowFuse: reports reach
leadership, danger alerts every leader at once, retaliation is a violation, and the code binds
leaders too: a report about a leader never reaches them, a report about all of them goes to the
board.
"""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from intake.conduct.roster import shift_at
from intake.runtime.cycle import running
from intake.settings.loading import load_settings
from intake.settings.schema import Settings
from intake.store.models import EventKind, Party, Ticket, TicketEvent
from tests.mailroom import Mailroom, door, reply, to_only
from tests.servers import Dovecot, SmtpSink
from tests.support import REPO, make_mail

SAM = "Sam Reporter <sam@example.net>"
MAX = "max@example.com"


def example(name: str, servers: dict[str, Any]) -> Settings:
    """The example's settings as shipped, pointed at the test servers and a fresh database."""
    raw = tomllib.loads((REPO / "examples" / name / "settings.toml").read_text())
    for section in ("mailbox", "outbound", "database", "paths"):
        raw[section] = servers[section]
    return Settings.model_validate(raw)


@pytest.mark.parametrize("name", ["mautic", "flowfuse"])
def test_the_example_files_load_as_shipped(name: str) -> None:
    settings = load_settings(REPO / "examples" / name / "settings.toml")
    assert (settings.paths.templates / "acknowledgement.j2").is_file()


async def _mailroom(
    name: str, imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str
) -> AsyncIterator[Mailroom]:
    settings = example(name, imap_config)
    async with running(settings):
        yield Mailroom(settings, dovecot, sink, folder)


@pytest.fixture
async def mautic(
    imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str
) -> AsyncIterator[Mailroom]:
    async for mailroom in _mailroom("mautic", imap_config, dovecot, sink, folder):
        yield mailroom


@pytest.fixture
async def flowfuse(
    imap_config: dict[str, Any], dovecot: Dovecot, sink: SmtpSink, folder: str
) -> AsyncIterator[Mailroom]:
    async for mailroom in _mailroom("flowfuse", imap_config, dovecot, sink, folder):
        yield mailroom


def recipients(sent: list[EmailMessage]) -> set[str]:
    return {str(m["To"]).split("<")[-1].rstrip(">").lower() for m in sent}


async def report(
    mailroom: Mailroom, body: str, subject: str = "A report"
) -> tuple[Ticket, list[EmailMessage]]:
    to = mailroom.settings.organisation.address
    sent = await mailroom.send(make_mail(sender=SAM, to=to, subject=subject, body=body))
    inbound = await mailroom.last_outcome()
    assert inbound.ticket is not None, inbound.reason
    return await Ticket.get(id=inbound.ticket.id).prefetch_related("assignee"), sent


async def decide(
    mailroom: Mailroom, ticket: Ticket, notice: EmailMessage, rung: str
) -> list[EmailMessage]:
    """The assignee thinks aloud with the team (a plain reply: the reporter sees nothing), asks
    the reporter through the reporter door, tells the reported person the decision, then records
    it."""
    assert ticket.assignee is not None
    member = ticket.assignee.email
    aloud = await mailroom.send(reply(notice, member, "I lean to the strictest measure here."))
    assert not any("sam@example.net" in str(m["To"]) for m in aloud)
    asked = await mailroom.send(reply(notice, member, "Did anyone else see it?", to=door(notice)))
    assert "Did anyone else see it?" in to_only(asked, "sam@example.net").get_content()
    sent = await mailroom.send(
        reply(
            notice, member, f"#contact {MAX} reported\nHello Max,\n\nThe team has decided: {rung}."
        )
    )
    await mailroom.send(reply(notice, member, f"#resolve {rung} repeated harassment"))
    return sent


# --- Mautic --------------------------------------------------------------------------------------


async def test_mautic_a_permanent_expulsion_is_appealed_by_writing_to_info(
    mautic: Mailroom,
) -> None:
    ticket, sent = await report(mautic, "Max keeps insulting me in the forum.")
    assert ticket.assignee is not None
    decider = ticket.assignee.email
    notice = to_only(sent, decider)
    to_max = to_only(await decide(mautic, ticket, notice, "permanent-expulsion"), MAX)
    assert to_max["From"] == "Mautic Code of Conduct Team <info@mautic.example>"
    assert "permanent-expulsion" in to_max.get_content()
    assert b"sam@example.net" not in to_max.as_bytes() and b"insulting" not in to_max.as_bytes()

    sent = await mautic.send(
        make_mail(
            sender=MAX,
            to="info@mautic.example",
            subject="Appeal",
            body="I would like to appeal the decision to expel me.",
        )
    )
    appeal = await Ticket.get(kind="appeal").prefetch_related("assignee", "refers_to")
    assert appeal.refers_to is not None and appeal.refers_to.id == ticket.id
    assert appeal.assignee is not None
    assert appeal.assignee.email != decider
    assert "lead" in appeal.assignee.roles
    ack = to_only(sent, MAX)
    assert ack["Subject"] == f"[{appeal.ref}] We have received your appeal"
    assert ticket.ref in ack.get_content() and appeal.assignee.name in ack.get_content()
    assert "appeal" in to_only(sent, appeal.assignee.email)["Subject"]
    assert "sam@example.net" not in recipients(sent)


async def test_mautic_a_temporary_ban_cannot_be_appealed_and_the_policy_is_quoted(
    mautic: Mailroom,
) -> None:
    ticket, sent = await report(mautic, "Max keeps insulting me in the forum.")
    assert ticket.assignee is not None
    to_max = to_only(
        await decide(mautic, ticket, to_only(sent, ticket.assignee.email), "temporary-ban"), MAX
    )
    assert (await Ticket.get(id=ticket.id)).resolution_ends_at is not None

    sent = await mautic.send(reply(to_max, MAX, "I want to appeal this decision, it is unfair."))
    inbound = await mautic.last_outcome()
    assert inbound.outcome == "appeal_refused"
    answer = to_only(sent, MAX)
    assert "Only permanent resolutions, such as a permanent expulsion, may be appealed" in (
        answer.get_content()
    )
    assert recipients(sent) == {MAX}
    assert await Ticket.filter(kind="appeal").count() == 0
    recorded = await TicketEvent.filter(ticket=ticket, kind=EventKind.INBOUND, internal=True)
    assert any("unfair" in event.body for event in recorded)


async def test_mautic_an_appeal_after_the_window_is_refused(mautic: Mailroom) -> None:
    ticket, sent = await report(mautic, "Max keeps insulting me in the forum.")
    assert ticket.assignee is not None
    to_max = to_only(
        await decide(mautic, ticket, to_only(sent, ticket.assignee.email), "permanent-expulsion"),
        MAX,
    )
    await Ticket.filter(id=ticket.id).update(resolved_at=datetime.now(UTC) - timedelta(days=31))
    sent = await mautic.send(reply(to_max, MAX, "I would like to appeal."))
    assert (await mautic.last_outcome()).outcome == "appeal_refused"
    assert "The time to appeal this decision ended on" in to_only(sent, MAX).get_content()


async def test_mautic_an_appeal_naming_no_case_asks_for_the_reference(mautic: Mailroom) -> None:
    sent = await mautic.send(
        make_mail(sender="stranger@example.com", to="info@mautic.example", subject="Appeal")
    )
    appeal = await Ticket.get(kind="appeal")
    assert appeal.refers_to_id is None  # type: ignore[attr-defined]
    assert (
        "Which decision would you like to appeal?"
        in to_only(sent, "stranger@example.com")["Subject"]
    )


async def test_mautic_a_report_about_the_member_on_duty_goes_to_the_backup(
    mautic: Mailroom,
) -> None:
    shift = shift_at(mautic.settings, datetime.now(UTC))
    on_duty = shift.member
    handle = on_duty.handles[0]
    ticket, sent = await report(mautic, f"The moderator {handle} deleted my posts and mocked me.")
    assert ticket.assignee is not None and ticket.assignee.email == shift.backup.email
    assert on_duty.email not in recipients(sent)
    excluded = await Party.get(ticket=ticket, email=on_duty.email)
    assert excluded.excluded and handle in excluded.excluded_reason
    ack = to_only(sent, "sam@example.net").get_content()
    assert shift.backup.name in ack and on_duty.name not in ack


async def test_mautic_general_mail_goes_to_the_community_address(mautic: Mailroom) -> None:
    sent = await mautic.send(
        make_mail(sender=SAM, to="info@mautic.example", subject="Sponsorship of MautiCon 2027")
    )
    ticket = await Ticket.get()
    assert ticket.kind == "general" and ticket.assignee_id is None  # type: ignore[attr-defined]
    assert recipients(sent) == {"community@mautic.example", "sam@example.net"}
    assert "community@mautic.example" in to_only(sent, "sam@example.net").get_content()


# --- FlowFuse ------------------------------------------------------------------------------------


async def test_flowfuse_a_report_about_the_ceo_never_reaches_the_ceo(flowfuse: Mailroom) -> None:
    ticket, sent = await report(
        flowfuse, "Jane, the CEO, made a demeaning comment about my accent in the all-hands."
    )
    assert ticket.assignee is not None and ticket.assignee.email == "people@flowfuse.example"
    assert recipients(sent) == {
        "sam@example.net",
        "people@flowfuse.example",
        "cto@flowfuse.example",
    }
    sent = await flowfuse.send(
        reply(
            to_only(sent, "people@flowfuse.example"),
            "people@flowfuse.example",
            "#note Spoke to HR.",
        )
    )
    all_recipients = {r for m in flowfuse.sink.messages for r in m.rcpt_tos}
    assert "ceo@flowfuse.example" not in all_recipients


async def test_flowfuse_danger_alerts_every_leader_at_once(flowfuse: Mailroom) -> None:
    ticket, sent = await report(
        flowfuse, "A colleague threatened me after the meeting and I feel unsafe at the office."
    )
    assert ticket.urgent
    assert {"people@flowfuse.example", "cto@flowfuse.example", "ceo@flowfuse.example"} <= (
        recipients(sent)
    )
    assert to_only(sent, "people@flowfuse.example")["Subject"].startswith(f"[{ticket.ref}] URGENT")
    assert to_only(sent, "ceo@flowfuse.example")["Subject"] == f"[{ticket.ref}] URGENT: new case"
    ack = to_only(sent, "sam@example.net").get_content()
    assert ack.lstrip().startswith("IF ANYONE IS IN DANGER")
    assert "within 2 hours" in ack


async def test_flowfuse_a_report_about_every_leader_goes_to_the_board(flowfuse: Mailroom) -> None:
    ticket, sent = await report(
        flowfuse, "People Ops, the CTO and Jane all ignored my complaint about pay."
    )
    assert ticket.assignee is None
    assert recipients(sent) == {"sam@example.net", "board@flowfuse.example"}
    referral = to_only(sent, "board@flowfuse.example")
    assert "ignored my complaint" in referral.get_content()
    assert "the FlowFuse board of directors" in to_only(sent, "sam@example.net").get_content()

    ack = to_only(sent, "sam@example.net")
    sent = await flowfuse.send(reply(ack, SAM, "One more thing: it happened twice."))
    assert recipients(sent) == {"board@flowfuse.example"}
    assert "it happened twice" in sent[0].get_content()


async def test_flowfuse_retaliation_after_a_report_is_its_own_kind(flowfuse: Mailroom) -> None:
    first, _ = await report(flowfuse, "My manager shouted at me.")
    second, _ = await report(
        flowfuse, f"Since I reported him ({first.ref}), he has excluded me from every meeting."
    )
    assert second.kind == "retaliation"
    assert "since i reported" in second.kind_reason.lower()


async def test_flowfuse_a_termination_is_appealed_to_a_leader_who_did_not_decide(
    flowfuse: Mailroom,
) -> None:
    ticket, sent = await report(flowfuse, "Alex harassed me repeatedly.")
    notice = to_only(sent, "people@flowfuse.example")
    to_max = to_only(await decide(flowfuse, ticket, notice, "termination"), MAX)
    sent = await flowfuse.send(reply(to_max, MAX, "I would like to appeal this decision."))
    appeal = await Ticket.get(kind="appeal").prefetch_related("assignee")
    assert appeal.assignee is not None and appeal.assignee.email == "cto@flowfuse.example"
    assert "We have received your appeal" in to_only(sent, MAX)["Subject"]


async def test_general_mail_misjudged_is_brought_back_by_a_reply_and_kind(
    flowfuse: Mailroom,
) -> None:
    ticket, sent = await report(flowfuse, "About the booth.", subject="Invoice for the booth")
    assert ticket.kind == "general" and ticket.assignee is None
    answer = to_only(sent, "sam@example.net")
    assert recipients(sent) == {"sam@example.net"}

    sent = await flowfuse.send(
        reply(answer, SAM, "This is not about money: the booth staff harassed me.")
    )
    handover = to_only(sent, "people@flowfuse.example")
    assert "booth staff harassed me" in handover.get_content()

    await flowfuse.send(reply(handover, "people@flowfuse.example", "#kind report"))
    refreshed = await Ticket.get(id=ticket.id).prefetch_related("assignee")
    assert refreshed.kind == "report"
    assert refreshed.assignee is not None and refreshed.assignee.email == "people@flowfuse.example"
    assert "people@flowfuse.example" in refreshed.kind_reason
