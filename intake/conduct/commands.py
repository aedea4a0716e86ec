"""Commands a team member writes as the first line of a reply: they act on the case, and none
sends the reply to the reporter (`#reply`, which does, is the team-reply handler's). Each one
answers its sender by email with what it did or why it did not (HELP lists them).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from intake.conduct.assignment import eligible_assignee, hand_over
from intake.conduct.audit import record_listed
from intake.conduct.digest import digest_for, send_digest
from intake.conduct.history import history
from intake.conduct.mailing import mail_party, mail_team
from intake.conduct.notes import note
from intake.conduct.parties import add_party, exclude_member, excluded_emails, reporter_party
from intake.conduct.referral import refer_outside
from intake.conduct.replies import own_or_team_address
from intake.engine.compose import valid_address
from intake.mail.sanitize import db_text, header_text
from intake.settings.policy import CaseKind
from intake.settings.schema import Settings
from intake.settings.templates import TemplateName
from intake.store.models import EventKind, PartyRole, TeamMember, Ticket, TicketEvent, TicketStatus

HELP = """\
A plain reply stays in the team: it is recorded on the case and copied
to the other members on it, never sent to the reporter. Start a reply
with one of these commands to act on the case.

  #reply [address or role]     send the rest of the reply to the reporter (or to another
                               party on the case: reported, witness, other, or an address)
                               from the team's address; your reporter door does the same
  #note <text>                 an internal note (the rest of the reply too)
  #assign <member>             hand the case to another member (address, name or login)
  #status <status>             investigating, waiting, resolved or closed
  #resolve <resolution> [why]  record a resolution; the reporter is sent the outcome
                               (the rest of the reply is included in it)
  #recuse                      step away from the case: it is never sent to you again
  #contact <address> <role>    send the rest of the reply to another party (role: reported,
                               witness or other) from the team's address; their replies come
                               back to the case, never to the reporter
  #kind <kind>                 reclassify: report, retaliation, appeal or general
  #history <who>               the cases from or about someone (address, name or @handle)
  #digest                      the overview of your open cases, by email, now
  #help                        this list

To write to the reporter without a command, write to your reporter door: the address at the
top of every email Intake sends you about the case."""
# A first line starting with '#' (or a full-width U+FF03) is a command attempt, whatever follows:
# "# note" works, and a typo is an error, never a relay.
_COMMAND_LINE = re.compile(r"^[#\uff03]\s*(\S*)[ \t]*(.*)$")
SETTABLE_STATUSES = (
    TicketStatus.INVESTIGATING,
    TicketStatus.WAITING,
    TicketStatus.RESOLVED,
    TicketStatus.CLOSED,
)


@dataclass(frozen=True)
class Command:
    name: str  # lowercased, without '#'
    args: str  # the rest of the first line
    body: str  # the lines after the first


@dataclass(frozen=True)
class CommandContext:
    settings: Settings
    ticket: Ticket
    member: TeamMember
    now: datetime


@dataclass(frozen=True)
class CommandResult:
    ok: bool
    message: str


def parse_command(text: str) -> Command | None:
    """The command on the first non-empty line of `text`, or None when it does not start with one.
    An unknown `#word` is still a command (and an error): a reply meant to stay internal must
    never reach the reporter because of a typo."""
    stripped = text.strip()
    if not stripped:
        return None
    first, _, rest = stripped.partition("\n")
    match = _COMMAND_LINE.match(first.strip())
    if match is None:
        return None
    name = match.group(1).lower()
    return Command(name=name or "(nothing)", args=match.group(2).strip(), body=rest.strip())


async def _state_event(context: CommandContext, body: str) -> None:
    await TicketEvent.create(
        ticket=context.ticket,
        kind=EventKind.STATE,
        author=context.member.email,
        body=db_text(body),
        internal=True,
    )


async def _note(context: CommandContext, command: Command) -> CommandResult:
    text = "\n".join(part for part in (command.args, command.body) if part)
    if not text:
        return CommandResult(False, "#note needs some text: nothing was recorded.")
    await note(context.settings, context.ticket, text, author=context.member.email)
    copied = await mail_team(
        context.settings,
        context.ticket,
        TemplateName.CASE_UPDATE,
        {
            "headline": "Internal note",
            "event": f"{context.member.name} added a note.",
            "text": text,
        },
        author=context.member.email,
    )
    copies = f" Copied to {', '.join(copied)}." if copied else ""
    return CommandResult(
        True, f"Your note was added to the case; the reporter does not see it.{copies}"
    )


async def _find_member(who: str) -> list[TeamMember]:
    wanted = who.strip().lower()
    members = await TeamMember.filter(active=True).order_by("id")
    exact = [m for m in members if wanted in (m.email, m.name.lower())]
    if exact:
        return exact
    return [m for m in members if m.email.split("@", 1)[0] == wanted]


async def _assign(context: CommandContext, command: Command) -> CommandResult:
    if not command.args:
        return CommandResult(False, "#assign needs a team member: an address, a name or a login.")
    found = await _find_member(command.args)
    if len(found) != 1:
        problem = "matches nobody" if not found else "matches more than one member"
        return CommandResult(False, f"#assign {command.args}: {problem} on the team.")
    member = found[0]
    if member.email in await excluded_emails(context.ticket):
        return CommandResult(False, f"{member.name} is excluded from this case and cannot hold it.")
    if context.ticket.assignee_id == member.id:
        return CommandResult(True, f"{member.name} already holds this case.")
    await hand_over(
        context.settings, context.ticket, member, f"{context.member.name} assigned it to you"
    )
    await _state_event(context, f"assigned to {member.email} by {context.member.email}")
    return CommandResult(True, f"The case is now assigned to {member.name}, who has been told.")


E = TypeVar("E", bound=StrEnum)


def _choice(command: Command, choices: tuple[E, ...]) -> E | CommandResult:
    """The command's argument as one of `choices`, or the answer that names them."""
    wanted = command.args.strip().lower()
    for choice in choices:
        if choice == wanted:
            return choice
    listed = ", ".join(choices)
    return CommandResult(False, f"#{command.name} {wanted or '(nothing)'}: choose one of {listed}.")


async def _status(context: CommandContext, command: Command) -> CommandResult:
    status = _choice(command, SETTABLE_STATUSES)
    if isinstance(status, CommandResult):
        return status
    ticket = context.ticket
    before = ticket.status
    ticket.status = status
    if status != before:  # the retention clock starts at closing (intake.conduct.retention)
        ticket.closed_at = context.now if status == TicketStatus.CLOSED else None
    await ticket.save(update_fields=["status", "closed_at", "updated_at"])
    await _state_event(context, f"status {before} -> {status}")
    return CommandResult(True, f"The case's status is now {status} (it was {before}).")


async def _resolve(context: CommandContext, command: Command) -> CommandResult:
    settings, ticket = context.settings, context.ticket
    name, _, reason = command.args.partition(" ")
    resolution = settings.resolution(name) if name else None
    if resolution is None:
        ladder = ", ".join(r.name for r in settings.resolutions)
        return CommandResult(False, f"#resolve {name or '(nothing)'}: choose one of {ladder}.")
    ticket.status = TicketStatus.RESOLVED
    ticket.closed_at = None  # resolved, so no longer closed (the retention clock: resolved_at)
    ticket.resolution = resolution.name
    ticket.resolution_reason = db_text(reason.strip())
    ticket.resolved_by = context.member.email
    ticket.resolved_at = context.now
    ticket.resolution_ends_at = context.now + resolution.duration if resolution.duration else None
    await ticket.save(
        update_fields=[
            "status",
            "resolution",
            "resolution_reason",
            "resolved_by",
            "resolved_at",
            "resolution_ends_at",
            "closed_at",
            "updated_at",
        ]
    )
    await _state_event(
        context,
        f"resolved: {resolution.name} ({reason.strip() or 'no reason given'})"
        f" by {context.member.email}",
    )
    reporter = await reporter_party(ticket)
    if reporter is None:
        told = " The reporter left no address to tell."
    else:
        await mail_party(
            settings,
            ticket,
            reporter,
            TemplateName.OUTCOME,
            {
                "reporter_name": header_text(reporter.name),
                "description": resolution.description,
                "message": command.body,
            },
            internal=False,
            auto_submitted=None,
        )
        told = " The reporter has been sent the outcome."
    return CommandResult(True, f"Resolved as {resolution.name}: {resolution.description}{told}")


async def _recuse(context: CommandContext, _: Command) -> CommandResult:
    ticket, member = context.ticket, context.member
    await exclude_member(ticket, member, f"recused by {member.email}")
    await _state_event(context, f"{member.email} recused")
    if ticket.assignee_id != member.id:
        return CommandResult(True, "You are recused: Intake will not send you this case again.")
    successor = await eligible_assignee(context.settings, ticket, context.now)
    if successor is None:
        ticket.assignee = None
        await ticket.save(update_fields=["assignee_id", "updated_at"])
        referred = await refer_outside(
            context.settings, ticket, "every member of the team is excluded from it"
        )
        return CommandResult(True, f"You are recused. The case: {referred}.")
    await hand_over(
        context.settings, context.ticket, successor, f"{member.name} stepped away from it"
    )
    return CommandResult(True, f"You are recused; the case is now with {successor.name}.")


CONTACT_ROLES = (PartyRole.REPORTED, PartyRole.WITNESS, PartyRole.OTHER)
# In the order the help text gives them.
KINDS = (CaseKind.REPORT, CaseKind.RETALIATION, CaseKind.APPEAL, CaseKind.GENERAL)


_CONTACT = re.compile(r"^(?P<name>.*?)\s*<?(?P<address>[^\s<>]+@[^\s<>]+?)>?(?:\s+(?P<role>\w+))?$")


def _contact_args(args: str) -> tuple[str, str, str]:
    """`Name <address> role`, `address role` or `address`: (name, address, role)."""
    match = _CONTACT.match(args.strip())
    if match is None:
        return "", "", ""
    name = match.group("name").strip().strip('"')
    return name, match.group("address").lower(), (match.group("role") or "").lower()


async def _contact(context: CommandContext, command: Command) -> CommandResult:
    settings, ticket = context.settings, context.ticket
    name, address, role_text = _contact_args(command.args)
    roles = ", ".join(CONTACT_ROLES)
    try:
        role = PartyRole(role_text or "other")
    except ValueError:
        role = PartyRole.TEAM  # not allowed below
    if role not in CONTACT_ROLES:
        return CommandResult(False, f"#contact {command.args}: the role must be one of {roles}.")
    if not valid_address(address):
        return CommandResult(False, f"#contact: {address or '(nothing)'} is not an email address.")
    if own_or_team_address(settings, address):
        return CommandResult(False, f"#contact: {address} is our own or a team address.")
    if not command.body:
        return CommandResult(
            False, "#contact needs a message: write it on the lines after the command."
        )
    party = await add_party(ticket, role, address, name)
    await mail_party(
        settings,
        ticket,
        party,
        TemplateName.PARTY_MESSAGE,
        {"party_name": party.name, "text": command.body},
        internal=False,
        auto_submitted=None,
        record_as=f"{context.member.name}'s message sent to the {role} ({address})",
    )
    await _state_event(context, f"{address} contacted as {role} by {context.member.email}")
    return CommandResult(
        True,
        f"Your message was sent to {address} ({role}) from the team's address. Their replies"
        " will come to the case (and to you), never to the reporter.",
    )


async def _kind(context: CommandContext, command: Command) -> CommandResult:
    kind = _choice(command, KINDS)
    if isinstance(kind, CommandResult):
        return kind
    ticket = context.ticket
    before = ticket.kind
    ticket.kind = kind
    ticket.kind_reason = f"set to {kind} by {context.member.email} (was {before})"
    await ticket.save(update_fields=["kind", "kind_reason", "updated_at"])
    await _state_event(context, ticket.kind_reason)
    if ticket.assignee_id is None and kind != CaseKind.GENERAL:
        holder = await eligible_assignee(context.settings, ticket, context.now)
        if holder is not None:
            await hand_over(
                context.settings, context.ticket, holder, f"{context.member.name} made it a {kind}"
            )
            return CommandResult(True, f"The case is now a {kind}, held by {holder.name}.")
    return CommandResult(True, f"The case is now a {kind} (it was {before}).")


async def _help(context: CommandContext, _: Command) -> CommandResult:
    ladder = "\n".join(f"  {r.name}: {r.description}" for r in context.settings.resolutions)
    return CommandResult(True, f"{HELP}\n\nThe resolutions:\n{ladder}")


Executor = Callable[[CommandContext, Command], Awaitable[CommandResult]]


async def _history(context: CommandContext, command: Command) -> CommandResult:
    who = command.args.strip()
    if not who:
        return CommandResult(False, "#history needs an address, a name or a handle.")
    cases = await history(who, context.member.email)
    if not cases:
        return CommandResult(True, f"No case from or about {who} that you may see.")
    where = f"listed in the answer to #history {who}"
    await record_listed([case.ticket_id for case in cases], context.member.email, where)
    listed = "\n".join(f"  {case.line()}" for case in cases)
    return CommandResult(True, f"Cases from or about {who}:\n{listed}")


async def _digest(context: CommandContext, command: Command) -> CommandResult:
    digest = await digest_for(context.settings, context.member, context.now)
    await send_digest(context.settings, digest, context.now)
    return CommandResult(True, f"Your digest of {len(digest.rows)} open case(s) is on its way.")


COMMANDS: Mapping[str, Executor] = {
    "note": _note,
    "assign": _assign,
    "status": _status,
    "resolve": _resolve,
    "recuse": _recuse,
    "contact": _contact,
    "kind": _kind,
    "history": _history,
    "digest": _digest,
    "help": _help,
}


async def run_command(context: CommandContext, command: Command) -> CommandResult:
    executor = COMMANDS.get(command.name)
    if executor is None:
        known = ", ".join(f"#{name}" for name in ("reply", *COMMANDS))
        return CommandResult(False, f"#{command.name} is not a command. The commands: {known}.")
    return await executor(context, command)
