"""`intake oauth login` and `intake oauth status`: the mailbox's OAuth2 token, from a terminal
on the server, with the browser on any other machine."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Literal

import click

from intake.cli.common import settings_of
from intake.errors import IntakeError
from intake.mail.sanitize import short_duration
from intake.settings.oauth2 import OAuth2Settings
from intake.settings.schema import Settings
from intake.transport.oauth2.login import (
    finish_code_flow,
    finish_device_flow,
    start_code_flow,
    start_device_flow,
)
from intake.transport.oauth2.session import client_secret
from intake.transport.oauth2.token_file import StoredToken, load_token, token_path
from intake.transport.oauth2.tokens import LOGIN_COMMAND


@click.group()
def oauth() -> None:
    """The OAuth2 token the mailbox and the SMTP server are logged in with."""


@oauth.command()
@click.option(
    "--flow",
    type=click.Choice(["device", "code"]),
    default=None,
    help="device: type a code on any machine; code: paste back the address the browser is"
    " sent to. Default: [oauth2] flow, else device where the provider allows it.",
)
@click.pass_context
def login(ctx: click.Context, flow: Literal["device", "code"] | None) -> None:
    """Sign the mailbox's account in and keep its refresh token in the data directory."""
    settings = settings_of(ctx)
    config = _oauth2(settings)
    client_secret(settings)  # a missing secret is named before anyone opens a browser
    chosen = flow or config.effective_flow
    account = settings.mailbox.username or settings.outbound.username or "the mailbox's account"
    if chosen == "device":
        code = start_device_flow(settings)
        minutes = max(code.expires_in // 60, 1)
        click.echo(
            f"On any machine, open {code.verification_uri}\nand enter the code {code.user_code}"
            f" (it expires in {minutes} minutes). Sign in as {account} and allow access."
        )
        click.echo("Waiting for the approval...")
        token = finish_device_flow(settings, code)
    else:
        consent = start_code_flow(settings)
        click.echo(
            f"On any machine, open this address, sign in as {account} and allow access:\n\n"
            f"{consent.url}\n\nThe browser is then sent to {config.redirect_uri}..., which need"
            " not load. Paste that whole address (or the code in it) here:"
        )
        token = finish_code_flow(settings, consent, sys.stdin.readline())
    path = token_path(settings.data_dir)
    click.echo(f"Signed in: {token.account}, scopes {' '.join(token.scopes)}; saved in {path}.")
    click.echo("The daemon uses it at its next login; no restart is needed.")


@oauth.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """The account, scopes and lifetimes of the stored token; exits 1 when it is missing or
    the provider refused it."""
    settings = settings_of(ctx)
    config = _oauth2(settings)
    path = token_path(settings.data_dir)
    token = load_token(path)
    if token is None:
        raise IntakeError(f"no OAuth2 token in {path}: run `{LOGIN_COMMAND}`")
    for name, value in _status_lines(config, token, datetime.now(UTC)):
        click.echo(f"{name:<10} {value}")
    click.echo(f"{'file':<10} {path}")
    if token.refused is not None:
        sys.exit(1)


def _status_lines(
    config: OAuth2Settings, token: StoredToken, now: datetime
) -> list[tuple[str, str]]:
    lines = [
        ("provider", f"{token.provider} (client {token.client_id})"),
        ("account", token.account or "(not named in the settings)"),
        ("scopes", " ".join(token.scopes)),
        ("access", _access_line(token, now)),
        ("refresh", f"obtained {_when(token.obtained_at, now)}; last used {_last(token, now)}"),
    ]
    if token.client_id != config.client_id:
        lines.append(("WARNING", f"the token is for client {token.client_id}, not the one set"))
    if token.refused is not None:
        assert token.refused_at is not None
        lines.append(
            (
                "REFUSED",
                f"{_when(token.refused_at, now)}: {token.refused}; run `{LOGIN_COMMAND}`",
            )
        )
    else:
        lines.append(("state", "ok"))
    return lines


def _access_line(token: StoredToken, now: datetime) -> str:
    if token.access_token is None or token.expires_at is None:
        return "none held (one is fetched at the next login)"
    if token.expires_at <= now:
        return f"expired {short_duration(now - token.expires_at)} ago (refreshed at next login)"
    left = short_duration(token.expires_at - now)
    return f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC (in {left})"


def _last(token: StoredToken, now: datetime) -> str:
    return _when(token.refreshed_at, now) if token.refreshed_at else "never"


def _when(moment: datetime, now: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC ({short_duration(now - moment)} ago)"


def _oauth2(settings: Settings) -> OAuth2Settings:
    if settings.oauth2 is None:
        raise IntakeError("no [oauth2] table in the settings: see README, 'Google and Microsoft'")
    return settings.oauth2
