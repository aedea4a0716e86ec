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
from tests.servers import Dovecot, SmtpSink, free_port
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
def oauth_dovecot(
    tmp_path_factory: pytest.TempPathFactory, authority: Authority
) -> Iterator[Dovecot]:
    directory = tmp_path_factory.mktemp("oauth-dovecot")
    users = {ACCOUNT: "not-used-with-oauth2"}
    with Dovecot(directory, users=users, introspection_url=authority.introspection_url) as server:
        yield server


@pytest.fixture(scope="module")
def oauth_sink(authority: Authority) -> Iterator[SmtpSink]:
    sink = SmtpSink(auth={SMTP_LOGIN: SMTP_PASSWORD}, introspection_url=authority.introspection_url)
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
    assert "method=XOAUTH2" in oauth_dovecot.log_path.read_text()


def test_code_flow_with_pkce_takes_the_pasted_address(
    config: dict[str, Any], authority: Authority, tmp_path: Path
) -> None:
    path = write_settings(tmp_path, config)
    process = subprocess.Popen(
        [sys.executable, "-m", "intake", "--config", str(path), "oauth", "login", "--flow", "code"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    consent_page = ""
    while not consent_page.startswith("https://"):
        line = process.stdout.readline()
        assert line, "no consent page printed"
        consent_page = line.strip()
    redirected = authority.consent(consent_page, ACCOUNT)  # the browser's address bar
    output, errors = process.communicate(redirected + "\n", timeout=60)

    assert process.returncode == 0, errors
    assert "Signed in: info@example.org" in output
    assert stored(tmp_path)["refresh_token"] in authority.refresh_tokens


def test_an_access_token_the_servers_stop_taking_mid_run_is_refreshed_and_no_mail_is_lost(
    config: dict[str, Any],
    authority: Authority,
    oauth_dovecot: Dovecot,
    oauth_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    path = write_settings(tmp_path, config)
    device_login(path, authority)
    before, refused_before = authority.refreshes, authority.refused_logins
    with running_daemon(path) as daemon:
        daemon.wait_for_log("IMAP IDLE on")  # push logs in with the same token
        append_report(oauth_dovecot, config, "First report")
        wait_until(lambda: len(acknowledgements(oauth_sink)) == 1, "the first acknowledgement")
        authority.expire_access_tokens()  # the provider ends every token early
        append_report(oauth_dovecot, config, "Second report")
        wait_until(lambda: len(acknowledgements(oauth_sink)) == 2, "the second acknowledgement")

    assert authority.refused_logins > refused_before  # a server did refuse the old token
    assert authority.refreshes > before  # and a fresh one was fetched
    assert "CRITICAL" not in daemon.log
    assert oauth_dovecot.uids(config["mailbox"]["folder"], ACCOUNT) == []
    tokens = stored(tmp_path)
    for secret in (tokens["refresh_token"], tokens["access_token"]):
        assert secret not in daemon.log


def test_a_token_near_its_expiry_is_refreshed_before_any_login_and_a_rotated_one_is_kept(
    config: dict[str, Any],
    authority: Authority,
    oauth_dovecot: Dovecot,
    oauth_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    authority.state.rotate = True
    authority.state.access_lifetime = 60  # inside the five minutes refreshed ahead
    refused_before = authority.refused_logins
    path = write_settings(tmp_path, config)
    device_login(path, authority)
    first = stored(tmp_path)["refresh_token"]

    append_report(oauth_dovecot, config, "A report")
    intake("poll", config=path)

    second = stored(tmp_path)
    assert second["refresh_token"] != first  # rotated, and the new one saved
    assert second["refresh_token"] in authority.refresh_tokens
    assert first not in authority.refresh_tokens
    assert second["refreshed_at"] is not None
    assert authority.refused_logins == refused_before  # no login was tried with a dying token
    assert acknowledgements(oauth_sink) == ["[COC-2026-0001] We have received your message"]

    intake("poll", config=path)  # the saved token works for the next run too
    assert stored(tmp_path)["refresh_token"] in authority.refresh_tokens


def alerts(sink: SmtpSink) -> list[str]:
    return [
        m.parsed().get_content()
        for m in sink.messages
        if "alice@example.org" in m.rcpt_tos and "Needs attention" in str(m.parsed()["Subject"])
    ]


def test_a_revoked_refresh_token_is_one_alert_a_clear_check_line_and_a_new_login_mends_it(
    config: dict[str, Any],
    authority: Authority,
    oauth_dovecot: Dovecot,
    oauth_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    config["outbound"].update(auth="password", username=SMTP_LOGIN, password_env=SMTP_PASSWORD_ENV)
    path = write_settings(tmp_path, config)
    device_login(path, authority)
    authority.revoke(ACCOUNT)
    append_report(oauth_dovecot, config, "A report while the token is revoked")

    with running_daemon(path) as daemon:
        wait_until(lambda: len(alerts(oauth_sink)) == 1, "the alert to the leads")
        check = intake("check", config=path, check=False)

        assert check.returncode == 1
        oauth_line = next(line for line in check.stdout.splitlines() if " oauth2 " in line)
        assert oauth_line.startswith("FAILED")
        assert "refused the refresh token" in oauth_line
        assert "run `intake oauth login`" in oauth_line
        assert "invalid_grant" in stored(tmp_path)["refused"]

        device_login(path, authority)  # the operator signs in again; no restart
        wait_until(lambda: acknowledgements(oauth_sink) != [], "the report's acknowledgement")

    assert len(alerts(oauth_sink)) == 1
    assert "intake --config" in alerts(oauth_sink)[0] and "oauth login" in alerts(oauth_sink)[0]
    assert len(daemon.lines("CRITICAL")) == 1
    assert "fetch: working again" in daemon.log


def test_oauthbearer_logs_in_too_and_status_shows_the_token(
    config: dict[str, Any], authority: Authority, oauth_dovecot: Dovecot, tmp_path: Path
) -> None:
    config["oauth2"]["mechanism"] = "oauthbearer"
    path = write_settings(tmp_path, config)
    device_login(path, authority)

    check = intake("check", config=path, check=False)
    status = intake("oauth", "status", config=path)

    lines = check.stdout.splitlines()
    assert next(line for line in lines if " mailbox " in line).startswith("ok")
    assert "method=OAUTHBEARER" in oauth_dovecot.log_path.read_text()
    assert next(line for line in lines if " outbound " in line).startswith("ok")
    assert next(line for line in lines if " oauth2 " in line).startswith("ok")
    assert "account    info@example.org" in status.stdout
    assert "scopes     mail offline_access" in status.stdout
    assert "expires" in status.stdout and "state      ok" in status.stdout
    assert stored(tmp_path)["refresh_token"] not in status.stdout


def test_without_a_token_the_daemon_does_not_start_and_says_which_command_to_run(
    config: dict[str, Any], tmp_path: Path
) -> None:
    path = write_settings(tmp_path, config)
    run = intake("run", config=path, check=False)
    status = intake("oauth", "status", config=path, check=False)

    assert run.returncode == 1
    assert run.stderr.strip().endswith("yet: run `intake oauth login`")
    assert len(run.stderr.strip().splitlines()) == 1
    assert status.returncode == 1 and "run `intake oauth login`" in status.stderr


def test_a_provider_that_cannot_be_reached_is_a_passing_failure_not_a_refused_token(
    config: dict[str, Any], authority: Authority, tmp_path: Path
) -> None:
    path = write_settings(tmp_path, config)
    device_login(path, authority)
    config["oauth2"]["token_url"] = f"https://127.0.0.1:{free_port()}/token"  # nobody listens
    config["oauth2"]["refresh_ahead_seconds"] = 7200  # so the next login must refresh
    path = write_settings(tmp_path, config)

    check = intake("check", config=path, check=False)

    mailbox_line = next(line for line in check.stdout.splitlines() if " mailbox " in line)
    assert mailbox_line.startswith("FAILED") and "ConnectionError" in mailbox_line
    assert stored(tmp_path)["refused"] is None  # a network blip never asks for a new login
    assert next(line for line in check.stdout.splitlines() if " oauth2 " in line).startswith("ok")
