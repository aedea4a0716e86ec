"""OAuth2 mailboxes, end to end on real servers: `intake oauth login` against a test authority
(tests/servers/authority.py), then mail fetched from Dovecot through its oauth2 passdb and
acknowledgements sent to aiosmtpd over XOAUTH2, both checking the tokens with the authority."""

from __future__ import annotations

import copy
import json
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import running_daemon, wait_until
from tests.servers import Dovecot, SmtpSink
from tests.servers.authority import Authority
from tests.support import intake, make_mail, unique_folder, write_settings

ACCOUNT = "info@example.org"
SMTP_LOGIN = "relay"
SMTP_PASSWORD = "relay-secret"
SMTP_PASSWORD_ENV = "INTAKE_TEST_SMTP_PASSWORD"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authority]:
    with Authority(tmp_path_factory.mktemp("authority")) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_moods(authority: Authority) -> None:
    authority.state.rotate = False
    authority.state.access_lifetime = 3600


@pytest.fixture(scope="module")
def oauth_dovecot(tmp_path_factory: pytest.TempPathFactory, authority: Authority) -> Iterator[Dovecot]:
    directory = tmp_path_factory.mktemp("oauth-dovecot")
    users = {ACCOUNT: "not-used-with-oauth2"}
    with Dovecot(directory, users=users, introspection_url=authority.introspection_url) as server:
        yield server


@pytest.fixture(scope="module")
def oauth_sink(authority: Authority) -> Iterator[SmtpSink]:
    sink = SmtpSink(
        auth={SMTP_LOGIN: SMTP_PASSWORD}, introspection_url=authority.introspection_url
    )
    with sink:
        yield sink


@pytest.fixture
def config(
    base_config: dict[str, Any],
    authority: Authority,
    oauth_dovecot: Dovecot,
    oauth_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Both sides on OAuth2 with the test authority as a `custom` provider."""
    oauth_sink.clear()
    monkeypatch.setenv(SMTP_PASSWORD_ENV, SMTP_PASSWORD)
    folder = unique_folder()
    oauth_dovecot.create_folder(folder, ACCOUNT)
    data = copy.deepcopy(base_config)
    data["mailbox"] = {
        "kind": "imap",
        "host": oauth_dovecot.host,
        "port": oauth_dovecot.port,
        "security": "none",
        "auth": "oauth2",
        "username": ACCOUNT,
        "folder": folder,
        "processed_folder": f"{folder}/Processed",
        "timeout_seconds": 10,
    }
    data["outbound"] = {
        "kind": "smtp",
        "host": oauth_sink.host,
        "port": oauth_sink.port,
        "security": "none",
        "auth": "oauth2",
        "username": ACCOUNT,
        "timeout_seconds": 10,
        "retry_after": "1s",
    }
    data["oauth2"] = {
        "provider": "custom",
        "client_id": "intake-test",
        "token_url": authority.token_url,
        "device_authorization_url": authority.device_url,
        "authorization_url": authority.authorization_url,
        "scopes": ["mail", "offline_access"],
        "ca_file": str(authority.ca_file),
    }
    data["schedule"] = {"fetch_every": "1s", "process_every": "1s", "deliver_every": "1s"}
    data["outbound"]["keep_open"] = "1s"
    return data


def token_file(tmp_path: Path) -> Path:
    return tmp_path / "var" / "oauth2-token.json"


def stored(tmp_path: Path) -> dict[str, Any]:
    return json.loads(token_file(tmp_path).read_text())


def device_login(config_path: Path, authority: Authority, *args: str) -> str:
    """`intake oauth login` as an operator runs it: read the code it prints, approve it at the
    authority as the mailbox's account; its output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "intake", "--config", str(config_path), "oauth", "login", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    output = ""
    while (match := re.search(r"enter the code (\w+)", output)) is None:
        line = process.stdout.readline()
        assert line, f"no code printed: {output} {process.stderr.read() if process.stderr else ''}"
        output += line
    authority.approve(match.group(1), ACCOUNT)
    rest, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return output + rest


def append_report(dovecot: Dovecot, config: dict[str, Any], subject: str) -> None:
    raw = make_mail(subject=subject, body=f"{subject}: a report of harassment.")
    dovecot.append(raw, config["mailbox"]["folder"], ACCOUNT)


def acknowledgements(sink: SmtpSink) -> list[str]:
    return [str(m.parsed()["Subject"]) for m in sink.messages if "sam@example.net" in m.rcpt_tos]


def test_device_login_then_mail_is_fetched_and_answered_over_xoauth2(
    config: dict[str, Any],
    authority: Authority,
    oauth_dovecot: Dovecot,
    oauth_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    path = write_settings(tmp_path, config)
    output = device_login(path, authority)

    assert "Signed in: info@example.org" in output
    assert stat.S_IMODE(token_file(tmp_path).stat().st_mode) == 0o600
    assert stored(tmp_path)["refresh_token"] in authority.refresh_tokens

    append_report(oauth_dovecot, config, "Report over OAuth2")
    intake("poll", config=path)

    sent = oauth_sink.wait_for(1)
    assert {message.login for message in sent} == {ACCOUNT}  # XOAUTH2, as the mailbox account
    assert acknowledgements(oauth_sink) == ["[COC-2026-0001] We have received your message"]
    assert oauth_dovecot.uids(config["mailbox"]["folder"], ACCOUNT) == []  # fetched and moved
