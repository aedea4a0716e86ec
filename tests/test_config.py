"""Settings: the file format operators rely on, and one clear line for each mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from intake.errors import SettingsError
from intake.settings.loading import load_settings, require_secrets
from intake.settings.types import parse_duration
from tests.support import REPO, base_settings, write_settings


def _error_for(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(write_settings(tmp_path, data))
    return str(caught.value)


def test_the_shipped_settings_file_loads_with_the_embedded_defaults() -> None:
    settings = load_settings(REPO / "settings.toml")
    assert settings.mailbox.kind == "maildir"
    assert settings.outbound.kind == "directory"
    assert settings.database.url.startswith("sqlite://")
    assert settings.mailbox.path == REPO / "var" / "mail"
    assert settings.model_config.get("frozen") is True


def test_relative_paths_are_relative_to_the_settings_file(tmp_path: Path) -> None:
    data = base_settings(tmp_path)
    data["mailbox"]["path"] = "inbox"
    data["database"]["url"] = "sqlite://db/intake.sqlite3"
    settings = load_settings(write_settings(tmp_path / "conf", data))
    assert settings.mailbox.path == tmp_path / "conf" / "inbox"
    assert settings.database.url == f"sqlite://{tmp_path / 'conf' / 'db' / 'intake.sqlite3'}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["organisation"].pop("address"), "organisation.address: is required"),
        (lambda d: d["organisation"].update(address="not-an-address"), "is not an email address"),
        (lambda d: d["mailbox"].update(kind="pop3"), "mailbox.kind"),
        (lambda d: d["mailbox"].update(colour="blue"), "mailbox.colour: is not a known setting"),
        (lambda d: d["roster"].update(period="fortnightly"), "roster.period"),
        (lambda d: d["roster"].update(timezone="Mars/Olympus"), "unknown time zone"),
        (
            lambda d: d["roster"].update(rotation=["carol@example.org"]),
            "carol@example.org is not a [[team]] member",
        ),
        (lambda d: d.update(mailbox={"kind": "imap", "host": "h"}), "needs 'username'"),
        (lambda d: d["database"].update(url="mysql://x"), "database.url"),
    ],
)
def test_each_bad_setting_is_named_in_one_line(tmp_path: Path, change: Any, expected: str) -> None:
    data = base_settings(tmp_path)
    change(data)
    message = _error_for(tmp_path, data)
    assert expected in message
    assert "\n" not in message


def test_a_missing_secret_names_the_variable_for_commands_that_connect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTAKE_TEST_MISSING", raising=False)
    data = base_settings(tmp_path)
    data["outbound"] = {
        "kind": "smtp",
        "host": "127.0.0.1",
        "username": "info@example.org",
        "password_env": "INTAKE_TEST_MISSING",
    }
    settings = load_settings(write_settings(tmp_path, data))  # listings need no secrets
    with pytest.raises(SettingsError) as caught:
        require_secrets(settings)
    assert str(caught.value) == (
        "outbound.password_env: environment variable INTAKE_TEST_MISSING is not set"
    )
    result = subprocess.run(
        [sys.executable, "-m", "intake", "--config", str(tmp_path / "settings.toml"), "poll"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "INTAKE_TEST_MISSING"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("environment variable INTAKE_TEST_MISSING is not set")


def test_a_short_reply_secret_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    write_settings(tmp_path, base_settings(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "intake", "--config", str(tmp_path / "settings.toml"), "poll"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "INTAKE_SECRET": "short"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "intake: organisation.secret_env: INTAKE_SECRET is 5 characters long;"
        " a reply-address secret needs at least 32"
    ]


def test_missing_templates_are_a_start_up_error(tmp_path: Path) -> None:
    data = base_settings(tmp_path)
    data["paths"]["templates"] = str(tmp_path / "nowhere")
    assert "paths.templates" in _error_for(tmp_path, data)


def test_a_missing_file_and_bad_toml_are_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[organisation\nname = 1\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(broken)


def test_durations() -> None:
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("72h").total_seconds() == 72 * 3600
    assert parse_duration("1w").days == 7
    for bad in ("0h", "3 weeks", "", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_command_line_reports_a_bad_file_in_one_line_without_a_traceback(
    tmp_path: Path,
) -> None:
    data = base_settings(tmp_path)
    data["roster"]["rotation"] = ["nobody@example.org"]
    path = write_settings(tmp_path, data)
    result = subprocess.run(
        [sys.executable, "-m", "intake", "--config", str(path), "tickets"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "INTAKE_CONFIG": ""},
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "nobody@example.org is not a [[team]] member" in lines[0]


def test_intake_config_variable_picks_the_file(tmp_path: Path) -> None:
    path = write_settings(tmp_path, base_settings(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "intake", "roster", "--at", "2026-01-05T10:00:00"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path.parent,
        env={**os.environ, "INTAKE_CONFIG": str(path), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stderr
    assert "Alice Lead" in result.stdout


def test_the_database_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTAKE_TEST_DB_PASSWORD", "p@ss:w/rd")
    data = base_settings(tmp_path)
    data["database"] = {
        "url": "postgres://intake@db.internal:5433/intake",
        "password_env": "INTAKE_TEST_DB_PASSWORD",
    }
    settings = load_settings(write_settings(tmp_path, data))
    assert settings.database.url == "postgres://intake@db.internal:5433/intake"  # no secret
    assert settings.database_url() == "postgres://intake:p%40ss%3Aw%2Frd@db.internal:5433/intake"
