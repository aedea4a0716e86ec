"""settings.toml -> frozen, validated settings.

The file format is part of the product (documented in README.md). Relative paths are resolved
against the directory of the settings file, so a checkout runs from anywhere. Secrets never live
in the file: it names environment variables (`password_env`), read here at load time.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from intake.engine.tokens import signing_key
from intake.errors import SettingsError

CONFIG_ENV = "INTAKE_CONFIG"
DEFAULT_CONFIG = Path("settings.toml")

MEGABYTE = 1024 * 1024
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """'30s', '15m', '72h', '3d', '1w' -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like '30m', '72h', '3d' or '1w'")
    amount, unit = match.groups()
    if int(amount) == 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


def _check_email(text: str) -> str:
    if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", text):
        raise ValueError(f"{text!r} is not an email address")
    return text.lower()


Email = Annotated[str, AfterValidator(_check_email)]
Duration = Annotated[str, AfterValidator(_check_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Organisation(_Section):
    name: str
    address: Email
    display_name: str
    emergency_notice: str
    ticket_prefix: str = Field(default="COC", pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    outside_contact: Email | None = None
    outside_contact_name: str | None = None
    # The key that signs reply addresses comes from this environment variable; when it is not
    # set, one is generated once and kept in the data directory (see intake/tokens.py).
    secret_env: str = Field(default="INTAKE_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # info+TOKEN@domain: the character between the local part and the reply token.
    reply_separator: Literal["+", "-", "=", "_", "."] = "+"

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @property
    def local_part(self) -> str:
        return self.address.rsplit("@", 1)[0]


class Paths(_Section):
    data_dir: Path = Path("var")
    templates: Path = Path("templates")


class MailboxSettings(_Section):
    kind: Literal["imap", "maildir"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    folder: str = "INBOX"
    processed_folder: str = "Intake/Processed"
    batch_size: int = Field(default=100, ge=1, le=5000)
    timeout_seconds: float = Field(default=60, gt=0)
    path: Path | None = None
    # A first run that finds more mail than this waiting stops and asks for `intake backfill`.
    first_run_limit: int = Field(default=50, ge=0)

    @model_validator(mode="after")
    def _kind_needs(self) -> MailboxSettings:
        if self.kind == "imap":
            for key in ("host", "username", "password_env"):
                if getattr(self, key) is None:
                    raise ValueError(f"kind = 'imap' needs '{key}'")
        elif self.path is None:
            raise ValueError("kind = 'maildir' needs 'path'")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "ssl" else 143


class OutboundSettings(_Section):
    kind: Literal["smtp", "directory"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=60, gt=0)
    path: Path | None = None
    batch_size: int = Field(default=200, ge=1, le=10000)
    max_attempts: int = Field(default=10, ge=1)
    retry_after: Duration = "1m"
    max_retry_after: Duration = "6h"

    @model_validator(mode="after")
    def _kind_needs(self) -> OutboundSettings:
        if self.kind == "smtp":
            if self.host is None:
                raise ValueError("kind = 'smtp' needs 'host'")
            if (self.username is None) != (self.password_env is None):
                raise ValueError("'username' and 'password_env' go together")
        elif self.path is None:
            raise ValueError("kind = 'directory' needs 'path'")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"ssl": 465, "starttls": 587, "none": 25}[self.security]


class DatabaseSettings(_Section):
    url: str = "sqlite://var/intake.sqlite3"
    password_env: str | None = None  # PostgreSQL: the password, kept out of the URL

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite:// or postgres://")
        return url


class TeamMember(_Section):
    name: str
    email: Email
    roles: tuple[Literal["lead", "member"], ...] = ("member",)
    # Other names a report may use for this member (nicknames, chat handles, other addresses):
    # a report that names the member in any of these ways is kept from them.
    aliases: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()

    @property
    def is_lead(self) -> bool:
        return "lead" in self.roles

    def names(self) -> tuple[str, ...]:
        """Every way a report may name this member."""
        return (self.email, self.name, *self.aliases, *self.handles)


class Away(_Section):
    """A member off the rota between two instants (local to the roster's time zone if naive)."""

    member: Email
    start: datetime
    end: datetime


class Swap(_Section):
    """`member` takes the duty of `covers` between two instants."""

    member: Email
    covers: Email
    start: datetime
    end: datetime


class Roster(_Section):
    rotation: tuple[Email, ...]
    start: datetime
    period: Duration = "1w"
    timezone: str = "UTC"
    away: tuple[Away, ...] = ()
    swaps: tuple[Swap, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone

    @field_validator("rotation")
    @classmethod
    def _not_empty(cls, rotation: tuple[str, ...]) -> tuple[str, ...]:
        if not rotation:
            raise ValueError("needs at least one member")
        return rotation


class Schedule(_Section):
    fetch_every: Duration = "1m"
    process_every: Duration = "10s"
    deliver_every: Duration = "10s"
    deadlines_every: Duration = "5m"


class Processing(_Section):
    max_attempts: int = Field(default=3, ge=1)
    retry_after: Duration = "1m"
    batch_size: int = Field(default=200, ge=1)
    messages_per_commit: int = Field(default=20, ge=1, le=1000)
    parse_workers: int = Field(default=1, ge=0, le=64)
    acknowledgements_per_sender_per_day: int = Field(default=3, ge=0)


class Limits(_Section):
    """What a case keeps of a message. The raw message is always stored whole."""

    max_message_mb: float = Field(default=25, gt=0)
    max_attachments: int = Field(default=20, ge=0)
    max_attachment_mb: float = Field(default=10, gt=0)
    parse_seconds: float = Field(default=30, gt=0)  # in a parse worker; then the message fails

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * MEGABYTE)

    @property
    def max_attachment_bytes(self) -> int:
        return int(self.max_attachment_mb * MEGABYTE)


class Alerts(_Section):
    """Telling the team leads when Intake needs a person."""

    email_leads: bool = True
    after_failures: int = Field(default=3, ge=1)  # consecutive login failures before the email


class Deadlines(_Section):
    first_response: Duration = "72h"  # promised to the reporter; then the assignee is reminded
    urgent_first_response: Duration = "4h"  # the same for urgent cases
    escalate_after: Duration = "24h"  # after the reminder, the backup and the leads are told
    urgent_escalate_after: Duration = "2h"
    reporter_update: Duration = "7d"  # an open case's reporter hears from us at least this often
    ban_expiry_notice: Duration = "3d"  # the assignee is reminded this long before a ban ends

    def first_response_for(self, urgent: bool) -> timedelta:
        return parse_duration(self.urgent_first_response if urgent else self.first_response)

    def escalation_for(self, urgent: bool) -> timedelta:
        return parse_duration(self.urgent_escalate_after if urgent else self.escalate_after)


Phrases = dict[str, tuple[str, ...]]  # language -> phrases; matched whole-word, any case
Place = Literal["subject", "body", "attachment_names"]


class KindRule(_Section):
    """Mail whose subject or body (see `where`) holds one of the phrases is of this kind."""

    kind: Literal["appeal", "retaliation", "general"]
    phrases: Phrases
    where: tuple[Place, ...] = ("subject", "body")
    # Retaliation: only a message that also refers to an earlier case (a reference in it, or a
    # reply to one of its emails) counts.
    needs_case_reference: bool = False


DEFAULT_KIND_RULES = (
    KindRule(
        kind="appeal",
        where=("subject",),
        phrases={
            "en": ("appeal", "appealing"),
            "de": ("Widerspruch", "Einspruch", "Berufung"),
            "fr": ("appel", "recours"),
            "es": ("apelación", "recurso"),
        },
    ),
    KindRule(
        kind="appeal",
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
        kind="retaliation",
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
        kind="general",
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


class Classification(_Section):
    """What kind of mail a new message is, besides a report: the rules are data."""

    rules: tuple[KindRule, ...] = DEFAULT_KIND_RULES
    # General mail (not a report) goes to this address; unset: it is only recorded.
    general_contact: Email | None = None
    urgent_phrases: Phrases = Field(default_factory=lambda: dict(DEFAULT_URGENT_PHRASES))
    urgent_where: tuple[Place, ...] = ("subject", "body")


class Appeals(_Section):
    window: Duration = "30d"  # after the decision
    policy: str = (
        "Only permanent resolutions, such as bans, may be appealed, within 30 days of the decision."
    )


class Stats(_Section):
    min_count: int = Field(default=5, ge=1)  # smaller counts are shown as "fewer than N"


class Conversations(_Section):
    """How the team and the reporter talk through a case by email."""

    # A follow-up to a resolved case reopens it (the assignee is told either way).
    reopen_resolved: bool = True
    # Besides the assignee, the leads get a copy of what happens on every case.
    copy_leads: bool = False
    # Where the receiving server added Authentication-Results, a team reply is accepted only
    # when DMARC passed, or DKIM passed for the domain of its From address.
    require_authentication: bool = True
    # Only Authentication-Results headers from these servers (authserv-id) count; empty: the
    # topmost one, which the receiving server adds last.
    trusted_authserv_ids: tuple[str, ...] = ()


class Resolution(_Section):
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
        duration="30d",
    ),
    Resolution(
        name="permanent-ban",
        description="A permanent ban from community spaces.",
        appealable=True,
    ),
)


class Settings(_Section):
    organisation: Organisation
    paths: Paths = Paths()
    mailbox: MailboxSettings
    outbound: OutboundSettings
    database: DatabaseSettings = DatabaseSettings()
    team: tuple[TeamMember, ...]
    roster: Roster
    schedule: Schedule = Schedule()
    processing: Processing = Processing()
    deadlines: Deadlines = Deadlines()
    conversations: Conversations = Conversations()
    resolutions: tuple[Resolution, ...] = DEFAULT_RESOLUTIONS
    classification: Classification = Classification()
    appeals: Appeals = Appeals()
    stats: Stats = Stats()
    limits: Limits = Limits()
    alerts: Alerts = Alerts()
    source_file: Path | None = None

    @model_validator(mode="after")
    def _roster_members_are_team(self) -> Settings:
        emails = {member.email for member in self.team}
        if len(emails) != len(self.team):
            raise ValueError("team: an email address is listed twice")
        for address in self.roster.rotation:
            if address not in emails:
                raise ValueError(f"roster.rotation: {address} is not a [[team]] member")
        overrides: list[Away | Swap] = [*self.roster.away, *self.roster.swaps]
        for entry in overrides:
            covers = entry.covers if isinstance(entry, Swap) else entry.member
            for address in (entry.member, covers):
                if address not in emails:
                    raise ValueError(f"roster: {address} is not a [[team]] member")
            if entry.end <= entry.start:
                raise ValueError(f"roster: {entry.member}'s end is not after its start")
        names = [resolution.name for resolution in self.resolutions]
        if len(set(names)) != len(names):
            raise ValueError("resolutions: a name is listed twice")
        return self

    @property
    def leads(self) -> tuple[TeamMember, ...]:
        return tuple(member for member in self.team if member.is_lead)

    def resolution(self, name: str) -> Resolution | None:
        return next((r for r in self.resolutions if r.name == name.lower()), None)

    def member(self, email: str) -> TeamMember | None:
        email = email.lower()
        return next((m for m in self.team if m.email == email), None)

    @property
    def data_dir(self) -> Path:
        return self.paths.data_dir

    def database_url(self) -> str:
        """The URL to connect with: the configured one, plus the password from the environment
        when `database.password_env` names one."""
        url = self.database.url
        password = self.secret(self.database.password_env, "database.password_env")
        if password is None:
            return url
        parts = urlsplit(url)
        user = parts.username or ""
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def secret(self, env_name: str | None, key: str) -> str | None:
        """The secret the environment variable `env_name` holds; missing is a SettingsError."""
        if env_name is None:
            return None
        value = os.environ.get(env_name)
        if not value:
            raise SettingsError(f"{key}: environment variable {env_name} is not set")
        return value


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make every path in the file relative to the file's own directory."""

    def resolve(section: dict[str, Any], key: str) -> None:
        if isinstance(section.get(key), str):
            path = Path(section[key]).expanduser()
            section[key] = path if path.is_absolute() else base / path

    paths = raw.setdefault("paths", {})
    if isinstance(paths, dict):
        paths.setdefault("data_dir", "var")
        paths.setdefault("templates", "templates")
        resolve(paths, "data_dir")
        resolve(paths, "templates")
    for name in ("mailbox", "outbound"):
        section = raw.get(name)
        if isinstance(section, dict):
            resolve(section, "path")
            resolve(section, "ca_file")
    database = raw.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        url: str = database["url"]
        if url.startswith("sqlite://") and url != "sqlite://:memory:":
            path = Path(url.removeprefix("sqlite://"))
            database["url"] = "sqlite://" + str(path if path.is_absolute() else base / path)
    elif database is None:
        raw["database"] = {"url": "sqlite://" + str(base / "var" / "intake.sqlite3")}


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "extra_forbidden":
        message = "is not a known setting"
    return f"{where}: {message}" if where else message


def config_path(explicit: str | Path | None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: str | Path | None = None) -> Settings:
    """Read, validate and resolve the settings file; any problem is one SettingsError line."""
    file = config_path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{file}: settings file not found") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise SettingsError(f"{file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{file}: not valid TOML: {exc}") from None
    _resolve_paths(raw, file.resolve().parent)
    raw["source_file"] = file.resolve()
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"{file}: {_first_error(exc)}") from None
    _check_templates(settings.paths.templates)
    return settings


def require_secrets(settings: Settings) -> None:
    """For the commands that connect: every secret the file names must be set."""
    settings.secret(settings.mailbox.password_env, "mailbox.password_env")
    settings.secret(settings.outbound.password_env, "outbound.password_env")
    settings.secret(settings.database.password_env, "database.password_env")
    signing_key(settings)


TEMPLATE_KINDS = (
    "acknowledgement",
    "assignment",
    "rate_notice",
    "alert",
    "relay",
    "case_update",
    "command_result",
    "handover",
    "outcome",
    "party_message",
    "referral",
    "general",
    "appeal_acknowledgement",
    "appeal_refused",
    "appeal_reference_needed",
    "reminder",
)
OUTSIDE_CONTACT_MISSING = (
    "organisation.outside_contact is not set: acknowledgements cannot name someone outside the"
    " team to write to when a report concerns a team member"
)


def _check_templates(directory: Path) -> None:
    """Missing templates are a start-up error, not a parked message per report."""
    for kind in TEMPLATE_KINDS:
        if not (directory / f"{kind}.j2").is_file():
            raise SettingsError(f"paths.templates: {directory / (kind + '.j2')} does not exist")
