"""The settings file's schema: one frozen, validated section per table.

The file format is part of the product (documented in README.md). Secrets never live in the
file: it names environment variables (`password_env`), read by `Settings.secret`. The policy data
(kind phrases, urgent phrases, the resolution ladder) is in intake.settings.policy; reading the
file is intake.settings.loading.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from intake.errors import SettingsError
from intake.settings.oauth2 import OAuth2Settings
from intake.settings.policy import (
    DEFAULT_KIND_RULES,
    DEFAULT_RESOLUTIONS,
    DEFAULT_URGENT_PHRASES,
    KindRule,
    Phrases,
    Place,
    Resolution,
)
from intake.settings.retention import RetentionRule, RetentionSettings, period
from intake.settings.types import Duration, Email, Section, parse_duration

MEGABYTE = 1024 * 1024
Auth = Literal["password", "oauth2"]
IDLE_RENEW_MAX = timedelta(minutes=29)  # RFC 2177: servers may end IDLE after 30 minutes


class Organisation(Section):
    name: str
    address: Email
    display_name: str
    emergency_notice: str
    ticket_prefix: str = Field(default="COC", pattern=r"^[A-Z][A-Z0-9]{1,9}$")
    outside_contact: Email | None = None
    outside_contact_name: str | None = None
    # The key that signs reply addresses comes from this environment variable; when it is not
    # set, one is generated once and kept in the data directory (see intake/settings/secrets.py).
    secret_env: str = Field(default="INTAKE_SECRET", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # info+TOKEN@domain: the character between the local part and the reply token.
    reply_separator: Literal["+", "-", "=", "_", "."] = "+"

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @property
    def local_part(self) -> str:
        return self.address.rsplit("@", 1)[0]


class Paths(Section):
    data_dir: Path = Path("var")
    templates: Path = Path("templates")


class MailboxSettings(Section):
    kind: Literal["imap", "maildir"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    auth: Auth = "password"  # "oauth2": a token from the [oauth2] table, no password
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
    # Push: the daemon hears of new mail at once (IMAP IDLE, or a watched Maildir) instead of
    # waiting for the next poll. IDLE is ended and re-issued, with a NOOP to prove the link is
    # alive, every `idle_renew` (RFC 2177 allows 29 minutes; NATs drop idle links sooner).
    push: bool = True
    idle_renew: Duration = parse_duration("10m")
    # One daemon at a time fetches from the mailbox: it holds the fetch for this long, renewed
    # after every batch; a daemon that dies mid-fetch holds up the others no longer than this.
    claim_for: Duration = parse_duration("30s")

    @model_validator(mode="after")
    def _kind_needs(self) -> MailboxSettings:
        if self.kind == "imap":
            needed = ("host", "username") + (("password_env",) if self.auth == "password" else ())
            for key in needed:
                if getattr(self, key) is None:
                    raise ValueError(f"kind = 'imap' needs '{key}'")
            _no_password_with_oauth2(self.auth, self.password_env)
        elif self.auth == "oauth2":
            raise ValueError("auth = 'oauth2' needs kind = 'imap'")
        elif self.path is None:
            raise ValueError("kind = 'maildir' needs 'path'")
        if self.idle_renew > IDLE_RENEW_MAX:
            raise ValueError("'idle_renew' must be at most 29m: servers end IDLE after 30 minutes")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 993 if self.security == "ssl" else 143


class OutboundSettings(Section):
    kind: Literal["smtp", "directory"]
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["ssl", "starttls", "none"] = "starttls"
    auth: Auth = "password"  # "oauth2": XOAUTH2 with a token from the [oauth2] table
    username: str | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    timeout_seconds: float = Field(default=60, gt=0)
    path: Path | None = None
    batch_size: int = Field(default=200, ge=1, le=10000)
    max_attempts: int = Field(default=10, ge=1)
    retry_after: Duration = parse_duration("1m")
    max_retry_after: Duration = parse_duration("6h")
    # The daemon keeps its SMTP connection open this long after the last email, so the next
    # acknowledgement does not wait for a new connection, TLS and login.
    keep_open: Duration = parse_duration("30s")
    # A delivery run claims the rows it sends for this long (renewed while it sends), so
    # daemons sharing a database never send one twice; a run that dies frees them after it.
    claim_for: Duration = parse_duration("5m")
    # The envelope sender carries a signed tag of each email (info+b-...@), so a bounce that
    # quotes nothing is still matched to it; needs plus-addressing, as reply addresses do.
    verp: bool = True

    @model_validator(mode="after")
    def _kind_needs(self) -> OutboundSettings:
        if self.kind == "smtp":
            if self.host is None:
                raise ValueError("kind = 'smtp' needs 'host'")
            if self.auth == "oauth2":
                if self.username is None:
                    raise ValueError("auth = 'oauth2' needs 'username'")
                _no_password_with_oauth2(self.auth, self.password_env)
            elif (self.username is None) != (self.password_env is None):
                raise ValueError("'username' and 'password_env' go together")
        elif self.auth == "oauth2":
            raise ValueError("auth = 'oauth2' needs kind = 'smtp'")
        elif self.path is None:
            raise ValueError("kind = 'directory' needs 'path'")
        if self.claim_for.total_seconds() < 3 * self.timeout_seconds:
            raise ValueError(
                "'claim_for' must be at least three times 'timeout_seconds': a send may take"
                " that long (and one reconnect), and must not outlast its claim"
            )
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"ssl": 465, "starttls": 587, "none": 25}[self.security]


def _no_password_with_oauth2(auth: Auth, password_env: str | None) -> None:
    if auth == "oauth2" and password_env is not None:
        raise ValueError("auth = 'oauth2' logs in with a token: remove 'password_env'")


class DatabaseSettings(Section):
    url: str = "sqlite://var/intake.sqlite3"
    password_env: str | None = None  # PostgreSQL: the password, kept out of the URL

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite:// or postgres://")
        return url


class TeamMember(Section):
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


class Away(Section):
    """A member off the rota between two instants (local to the roster's time zone if naive)."""

    member: Email
    start: datetime
    end: datetime


class Swap(Section):
    """`member` takes the duty of `covers` between two instants."""

    member: Email
    covers: Email
    start: datetime
    end: datetime


class Roster(Section):
    rotation: tuple[Email, ...]
    start: datetime
    period: Duration = parse_duration("1w")
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


class Schedule(Section):
    fetch_every: Duration = parse_duration("1m")  # the poll, while push is off or down
    # While push works the daemon still polls this often: a safety net for a lost notification.
    fetch_every_while_pushed: Duration = parse_duration("5m")
    process_every: Duration = parse_duration("10s")
    deliver_every: Duration = parse_duration("10s")
    deadlines_every: Duration = parse_duration("5m")
    # The daemon warns (once) when mail waits longer than this: a stored message not yet
    # processed, or no successful fetch for this long.
    lag_warning: Duration = parse_duration("15m")


class Processing(Section):
    max_attempts: int = Field(default=3, ge=1)
    retry_after: Duration = parse_duration("1m")
    batch_size: int = Field(default=200, ge=1)
    messages_per_commit: int = Field(default=20, ge=1, le=1000)
    parse_workers: int = Field(default=1, ge=0, le=64)
    acknowledgements_per_sender_per_day: int = Field(default=3, ge=0)


class Limits(Section):
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


_HOST_PORT = r"^[^\s:\[\]]+:[0-9]{1,5}$|^\[[0-9a-fA-F:]+\]:[0-9]{1,5}$"


class MetricsSettings(Section):
    """An optional Prometheus endpoint on the daemon; off unless `listen` is set."""

    # "127.0.0.1:9464" or "[::1]:9464"; anything wider exposes queue figures to that network.
    listen: str | None = Field(default=None, pattern=_HOST_PORT)

    @property
    def address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class Alerts(Section):
    """Telling the team leads when Intake needs a person."""

    email_leads: bool = True
    after_failures: int = Field(default=3, ge=1)  # consecutive login failures before the email
    repeat_every: Duration = parse_duration("1d")  # the email again while it is not fixed


class Deadlines(Section):
    # promised to the reporter; then the assignee is reminded
    first_response: Duration = parse_duration("72h")
    urgent_first_response: Duration = parse_duration("4h")  # the same for urgent cases
    # after the reminder, the backup and the leads are told
    escalate_after: Duration = parse_duration("24h")
    urgent_escalate_after: Duration = parse_duration("2h")
    # an open case's reporter hears from us at least this often
    reporter_update: Duration = parse_duration("7d")
    # the assignee is reminded this long before a ban ends
    ban_expiry_notice: Duration = parse_duration("3d")

    def first_response_for(self, urgent: bool) -> timedelta:
        return self.urgent_first_response if urgent else self.first_response

    def escalation_for(self, urgent: bool) -> timedelta:
        return self.urgent_escalate_after if urgent else self.escalate_after


class Classification(Section):
    """What kind of mail a new message is, besides a report: the rules are data."""

    rules: tuple[KindRule, ...] = DEFAULT_KIND_RULES
    # General mail (not a report) goes to this address; unset: it is only recorded.
    general_contact: Email | None = None
    urgent_phrases: Phrases = Field(default_factory=lambda: dict(DEFAULT_URGENT_PHRASES))
    urgent_where: tuple[Place, ...] = ("subject", "body")


class Appeals(Section):
    window: Duration = parse_duration("30d")  # after the decision
    policy: str = (
        "Only permanent resolutions, such as bans, may be appealed, within 30 days of the decision."
    )


class DigestSettings(Section):
    """The overview of open cases each member is sent by email (intake.conduct.digest)."""

    enabled: bool = True
    every: Duration = parse_duration("1w")


class Stats(Section):
    min_count: int = Field(default=5, ge=1)  # smaller counts are shown as "fewer than N"


class Conversations(Section):
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


class Settings(Section):
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
    digest: DigestSettings = DigestSettings()
    limits: Limits = Limits()
    alerts: Alerts = Alerts()
    metrics: MetricsSettings = MetricsSettings()
    retention: RetentionSettings = RetentionSettings()
    oauth2: OAuth2Settings | None = None
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
        uses_oauth2 = "oauth2" in (self.mailbox.auth, self.outbound.auth)
        if uses_oauth2 and self.oauth2 is None:
            raise ValueError("auth = 'oauth2' needs an [oauth2] table")
        names = [resolution.name for resolution in self.resolutions]
        if len(set(names)) != len(names):
            raise ValueError("resolutions: a name is listed twice")
        for rule in self.retention.rules or ():
            if rule.resolution is not None and rule.resolution not in names:
                raise ValueError(
                    f"retention.rules: {rule.resolution!r} is not one of the [[resolutions]]"
                )
        return self

    @property
    def retention_rules(self) -> tuple[RetentionRule, ...]:
        return self.retention.effective_rules(self._most_severe)

    @property
    def retention_fingerprint(self) -> str:
        """Everything that decides what the retention policy purges and when, as a short hash:
        its rules and periods, the appeal window and which rungs may be appealed (a case is not
        purged while its decision may still be appealed). A change starts the grace again."""
        appeals = [(rung.name, rung.appealable) for rung in self.resolutions]
        parts = (self.retention.periods(self._most_severe), period(self.appeals.window), appeals)
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    @property
    def _most_severe(self) -> str | None:
        ladder = self.resolutions
        return ladder[-1].name if ladder else None

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
