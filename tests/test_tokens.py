"""Signed reply tokens: an encode/decode pair, the secret behind them, and their redaction."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake.cli.logs import configure_logging
from intake.engine.tokens import (
    ForgedToken,
    ReplyToken,
    decode,
    encode,
    redact,
    reply_address,
    tokens_in,
)
from intake.errors import SettingsError
from intake.settings.secrets import SECRET_FILE, signing_key
from tests.support import base_settings, settings_from, write_settings

KEY = b"k" * 40
OTHER_KEY = b"o" * 40


@given(
    ticket_id=st.integers(1, 10**12 - 1), party_id=st.integers(1, 10**12 - 1), door=st.booleans()
)
def test_every_token_decodes_to_what_was_encoded(ticket_id: int, party_id: int, door: bool) -> None:
    token = ReplyToken(ticket_id, party_id, door)
    assert decode(KEY, encode(KEY, token)) == token


def test_a_reporter_door_is_signed_for_its_purpose() -> None:
    """Adding or removing the `r-` of a reporter door breaks its signature: a member's plain
    reply address cannot be turned into a way to the reporter, nor the other way round."""
    plain, door = encode(KEY, ReplyToken(42, 7)), encode(KEY, ReplyToken(42, 7, door=True))
    assert door.startswith("42-7-r-")
    with pytest.raises(ForgedToken):
        decode(KEY, plain.replace("42-7-", "42-7-r-"))
    with pytest.raises(ForgedToken):
        decode(KEY, door.replace("42-7-r-", "42-7-"))


def test_a_reporter_door_is_redacted_like_any_token() -> None:
    door = encode(KEY, ReplyToken(42, 7, door=True))
    assert redact(f"to info+{door}@example.org") == "to info+42-7-r-…@example.org"


def test_a_token_survives_a_mail_system_that_uppercases_it() -> None:
    token = ReplyToken(42, 7)
    assert decode(KEY, encode(KEY, token).upper()) == token


def test_a_token_is_lowercase_letters_digits_and_hyphens() -> None:
    text = encode(KEY, ReplyToken(42, 7))
    assert text.startswith("42-7-")
    assert all(c.islower() or c.isdigit() or c == "-" for c in text)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("42-7-", "42-8-"),  # another party of the same case
        lambda t: t.replace("42-7-", "43-7-"),  # the same party number on another case
        lambda t: t[:-1] + ("a" if t[-1] != "a" else "b"),  # one character of the signature
    ],
)
def test_a_tampered_token_is_forged(tamper: Any) -> None:
    with pytest.raises(ForgedToken):
        decode(KEY, tamper(encode(KEY, ReplyToken(42, 7))))


def test_a_token_signed_with_another_key_is_forged() -> None:
    with pytest.raises(ForgedToken):
        decode(KEY, encode(OTHER_KEY, ReplyToken(42, 7)))


@pytest.mark.parametrize("text", ["", "hello", "42-7", "42-7-short", "x-7-abcdefghijklmnop"])
def test_text_that_is_not_token_shaped_is_not_a_token(text: str) -> None:
    assert decode(KEY, text) is None


def test_the_reply_address_is_plus_addressing_on_the_organisation_address(
    tmp_path: Path,
) -> None:
    settings = settings_from(tmp_path, base_settings(tmp_path))
    address = reply_address(settings, KEY, ReplyToken(42, 7))
    assert address == f"info+{encode(KEY, ReplyToken(42, 7))}@example.org"
    header = f'"Example Team" <{address.upper()}>, other@example.net'
    assert tokens_in(settings, header) == [encode(KEY, ReplyToken(42, 7)).upper()]
    assert tokens_in(settings, "notinfo+42-7-abcdefghijklmnop@example.org") == []


def test_the_separator_is_configurable(tmp_path: Path) -> None:
    data = base_settings(tmp_path)
    data["organisation"]["reply_separator"] = "-"
    settings = settings_from(tmp_path, data)
    address = reply_address(settings, KEY, ReplyToken(1, 2))
    assert address.startswith("info-1-2-")
    assert tokens_in(settings, address) == [encode(KEY, ReplyToken(1, 2))]


def test_redaction_hides_the_signature_but_keeps_the_case_and_party() -> None:
    token = encode(KEY, ReplyToken(42, 7))
    line = f"mail to info+{token}@example.org refused"
    assert redact(line) == "mail to info+42-7-…@example.org refused"
    assert token not in redact(line)


def test_log_lines_never_carry_a_token(caplog: pytest.LogCaptureFixture, capsys: Any) -> None:
    token = encode(KEY, ReplyToken(42, 7))
    configure_logging()
    logging.getLogger("intake.test").warning("rejected %s", f"info+{token}@example.org")
    assert token not in capsys.readouterr().err


def test_the_secret_comes_from_the_environment_variable_settings_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = base_settings(tmp_path)
    data["organisation"]["secret_env"] = "MY_INTAKE_SECRET"
    settings = settings_from(tmp_path, data)
    monkeypatch.setenv("MY_INTAKE_SECRET", "s" * 40)
    assert signing_key(settings) == b"s" * 40
    assert not (settings.data_dir / SECRET_FILE).exists()


def test_a_short_secret_is_a_clear_start_up_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(tmp_path, base_settings(tmp_path))
    monkeypatch.setenv("INTAKE_SECRET", "too-short")
    with pytest.raises(SettingsError, match="INTAKE_SECRET is 9 characters long"):
        signing_key(settings)


def test_without_a_secret_one_is_generated_once_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTAKE_SECRET", raising=False)
    settings = settings_from(tmp_path, base_settings(tmp_path))
    key = signing_key(settings)
    path = settings.data_dir / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32
    assert path.read_text().strip().encode() == key
    assert signing_key(settings_from(tmp_path, base_settings(tmp_path))) == key


def test_processes_starting_together_all_keep_the_one_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daemons and commands started at the same instant on a new data directory: none may read
    the secret file before it is written whole (it was created empty, then written)."""
    monkeypatch.delenv("INTAKE_SECRET", raising=False)
    config = write_settings(tmp_path, base_settings(tmp_path))
    code = (
        "import sys; from intake.settings.loading import load_settings;"
        " from intake.settings.secrets import signing_key;"
        " print(signing_key(load_settings(sys.argv[1])).decode())"
    )
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [process.communicate(timeout=60) for process in starting]
    assert [error for _, error in results] == [""] * 8
    assert len({out.strip() for out, _ in results}) == 1


def test_a_secret_file_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTAKE_SECRET", raising=False)
    data = base_settings(tmp_path)
    data["paths"]["data_dir"] = str(tmp_path / "shared-var")
    settings = settings_from(tmp_path, data)
    path = settings.data_dir / SECRET_FILE
    path.parent.mkdir(parents=True)
    path.write_text("x" * 64)
    path.chmod(0o644)
    with pytest.raises(SettingsError, match="readable by others"):
        signing_key(settings)
