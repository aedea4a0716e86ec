"""The [oauth2] table, the token file and the log filter: pure logic, no servers."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intake.cli.logs import configure_logging
from intake.errors import SettingsError
from intake.settings.loading import load_settings
from intake.transport.oauth2.redaction import remember_secret
from intake.transport.oauth2.token_file import StoredToken, load_token, save_token
from tests.support import base_settings, write_settings

IMAP = {"kind": "imap", "host": "imap.example.org", "username": "info@example.org"}
SMTP = {"kind": "smtp", "host": "smtp.example.org", "username": "info@example.org"}


def oauth2_settings(tmp_path: Path, **oauth2: Any) -> dict[str, Any]:
    data = base_settings(tmp_path)
    data["mailbox"] = {**IMAP, "auth": "oauth2"}
    data["outbound"] = {**SMTP, "auth": "oauth2"}
    data["oauth2"] = {"provider": "microsoft", "client_id": "app-id", **oauth2}
    return data


def error_for(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(write_settings(tmp_path, data))
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_microsoft_needs_only_a_client_id_and_gets_its_endpoints_scopes_and_device_flow(
    tmp_path: Path,
) -> None:
    data = oauth2_settings(tmp_path, tenant="example.onmicrosoft.com")
    config = load_settings(write_settings(tmp_path, data)).oauth2
    assert config is not None
    assert config.endpoints.token == (
        "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert config.effective_flow == "device"
    assert "https://outlook.office.com/IMAP.AccessAsUser.All" in config.effective_scopes
    assert "https://outlook.office.com/SMTP.Send" in config.effective_scopes
    assert "offline_access" in config.effective_scopes


def test_google_takes_the_code_flow_and_the_full_mail_scope(tmp_path: Path) -> None:
    data = oauth2_settings(tmp_path, provider="google", client_secret_env="GOOGLE_SECRET")
    config = load_settings(write_settings(tmp_path, data)).oauth2
    assert config is not None
    assert config.effective_flow == "code"
    assert config.effective_scopes == ("https://mail.google.com/",)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("oauth2"), "auth = 'oauth2' needs an [oauth2] table"),
        (lambda d: d["oauth2"].update(provider="google"), "needs 'client_secret_env'"),
        (
            lambda d: d["oauth2"].update(provider="google", client_secret_env="S", flow="device"),
            "Google does not grant mail scopes to the device flow",
        ),
        (lambda d: d["oauth2"].update(provider="custom"), "provider = 'custom' needs 'token_url'"),
        (
            lambda d: d["oauth2"].update(provider="custom", token_url="https://a.example/t"),
            "needs 'device_authorization_url' or 'authorization_url'",
        ),
        (
            lambda d: d["oauth2"].update(token_url="http://login.example/token"),
            "'token_url' must be an https:// address",
        ),
        (lambda d: d["mailbox"].update(password_env="PW"), "remove 'password_env'"),
        (lambda d: d["outbound"].pop("username"), "auth = 'oauth2' needs 'username'"),
        (lambda d: d["mailbox"].update(auth="token"), "mailbox.auth"),
        (
            lambda d: d.update(mailbox={"kind": "maildir", "path": "m", "auth": "oauth2"}),
            "auth = 'oauth2' needs kind = 'imap'",
        ),
    ],
)
def test_each_bad_oauth2_combination_is_one_line(
    tmp_path: Path, change: Any, expected: str
) -> None:
    data = oauth2_settings(tmp_path)
    change(data)
    assert expected in error_for(tmp_path, data)


def token(**fields: Any) -> StoredToken:
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "provider": "microsoft",
        "client_id": "app-id",
        "account": "info@example.org",
        "scopes": ("offline_access",),
        "refresh_token": "rt-secret-value-1",
        "obtained_at": now,
        "access_token": "at-secret-value-1",
        "expires_at": now,
    }
    return StoredToken(**{**values, **fields})


def test_the_token_file_is_written_whole_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "var" / "oauth2-token.json"
    save_token(path, token())
    save_token(path, token(refresh_token="rt-secret-value-2"))

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(path) == token(refresh_token="rt-secret-value-2")
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_token_file_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "oauth2-token.json"
    save_token(path, token())
    path.chmod(0o644)
    with pytest.raises(SettingsError, match=f"run: chmod 600 {path}"):
        load_token(path)


def test_tokens_never_reach_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    secret = remember_secret("at-" + "x" * 30)
    log = logging.getLogger("intake.test")
    log.info("logging in with %s", secret)
    log.info('answer {"access_token": "at-other", "refresh_token": "rt-other", "expires_in": 5}')
    log.info("AUTH XOAUTH2 dXNlcj1pbmZvQGV4YW1wbGUub3JnAWF1dGg9QmVhcmVy")
    log.info("Authorization: Bearer eyJhbGciOi.payload.signature")

    written = capsys.readouterr().err
    for leaked in (secret, "at-other", "rt-other", "dXNlcj1pbmZv", "eyJhbGciOi"):
        assert leaked not in written
    assert written.count("[redacted]") == 5
    assert '"expires_in": 5' in written
