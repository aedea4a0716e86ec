"""Who is on duty: weekly rotation in local time, hand-over at the configured hour."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from intake.conduct.roster import duty_order, shift_at, upcoming_shifts
from intake.settings.schema import Away, Settings, Swap
from tests.support import base_settings, intake, settings_from, write_settings

BERLIN = ZoneInfo("Europe/Berlin")


def _settings(tmp_path: Path, **roster: object):  # type: ignore[no-untyped-def]
    data = base_settings(tmp_path)
    data["team"].append({"name": "Carol Member", "email": "carol@example.org", "roles": ["member"]})
    data["roster"].update(
        rotation=["alice@example.org", "bob@example.org", "carol@example.org"], **roster
    )
    return settings_from(tmp_path, data)


def test_the_rotation_moves_on_each_period_and_wraps(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    on_duty = [
        shift_at(settings, datetime(2026, 1, day, 12, tzinfo=BERLIN)).member.email
        for day in (5, 12, 19, 26)
    ]
    assert on_duty == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
        "alice@example.org",
    ]


def test_hand_over_happens_at_the_start_hour_in_local_time(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    before = shift_at(settings, datetime(2026, 1, 12, 8, 59, tzinfo=BERLIN))
    after = shift_at(settings, datetime(2026, 1, 12, 9, 0, tzinfo=BERLIN))
    assert before.member.email == "alice@example.org"
    assert after.member.email == "bob@example.org"
    assert after.starts == datetime(2026, 1, 12, 9, 0, tzinfo=BERLIN)


def test_hand_over_stays_at_nine_across_daylight_saving(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    # Summer time starts on 2026-03-29; the Monday after, hand-over is still 09:00 Berlin time.
    shift = shift_at(settings, datetime(2026, 3, 30, 7, 0, tzinfo=UTC))  # 09:00 CEST
    assert shift.starts.hour == 9
    assert shift.starts.astimezone(UTC).hour == 7


def test_backup_is_the_next_on_the_rota(tmp_path: Path) -> None:
    shift = shift_at(_settings(tmp_path), datetime(2026, 1, 20, tzinfo=BERLIN))
    assert (shift.member.email, shift.backup.email) == ("carol@example.org", "alice@example.org")


def test_instants_before_the_start_still_have_someone_on_duty(tmp_path: Path) -> None:
    shift = shift_at(_settings(tmp_path), datetime(2025, 12, 30, tzinfo=BERLIN))
    assert shift.member.email == "carol@example.org"


def test_upcoming_shifts_are_consecutive(tmp_path: Path) -> None:
    shifts = upcoming_shifts(_settings(tmp_path, period="3d"), datetime(2026, 2, 1, tzinfo=UTC), 4)
    assert len(shifts) == 4
    for earlier, later in itertools.pairwise(shifts):
        assert earlier.ends == later.starts


def _with_overrides(settings: Settings, **overrides: object) -> Settings:
    return settings.model_copy(update={"roster": settings.roster.model_copy(update=overrides)})


WEEK_OF_JAN_5 = datetime(2026, 1, 7, 12, tzinfo=BERLIN)  # alice on duty, bob the backup


def test_a_member_away_is_skipped_and_the_next_on_the_rota_is_on_duty(tmp_path: Path) -> None:
    away = Away(
        member="alice@example.org",
        start=datetime(2026, 1, 6, 0, 0),
        end=datetime(2026, 1, 8, 0, 0),
    )
    settings = _with_overrides(_settings(tmp_path), away=(away,))
    during = shift_at(settings, WEEK_OF_JAN_5)
    assert (during.member.email, during.backup.email) == ("bob@example.org", "carol@example.org")
    after = shift_at(settings, datetime(2026, 1, 9, 12, tzinfo=BERLIN))
    assert (after.member.email, after.backup.email) == ("alice@example.org", "bob@example.org")


def test_a_swap_gives_one_members_duty_to_another(tmp_path: Path) -> None:
    swap = Swap(
        member="carol@example.org",
        covers="alice@example.org",
        start=datetime(2026, 1, 5, 9, 0),
        end=datetime(2026, 1, 12, 9, 0),
    )
    settings = _with_overrides(_settings(tmp_path), swaps=(swap,))
    shift = shift_at(settings, WEEK_OF_JAN_5)
    assert (shift.member.email, shift.backup.email) == ("carol@example.org", "bob@example.org")


def test_a_rota_of_one_has_the_first_other_lead_as_backup(tmp_path: Path) -> None:
    data = base_settings(tmp_path)
    data["team"][1]["roles"] = ["lead"]
    data["roster"]["rotation"] = ["alice@example.org"]
    shift = shift_at(settings_from(tmp_path, data), WEEK_OF_JAN_5)
    assert (shift.member.email, shift.backup.email) == ("alice@example.org", "bob@example.org")


def test_overrides_naming_someone_off_the_team_are_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    raw = settings.model_dump()
    raw["roster"]["away"] = [
        {"member": "zed@example.org", "start": "2026-01-06T00:00", "end": "2026-01-07T00:00"}
    ]
    with pytest.raises(ValidationError, match=r"zed@example\.org is not a"):
        Settings.model_validate(raw)


def test_roster_at_a_time_shows_the_overrides(tmp_path: Path) -> None:
    path = write_settings(tmp_path, base_settings(tmp_path))
    text = path.read_text() + (
        '\n[[roster.away]]\nmember = "alice@example.org"\n'
        'start = "2026-01-06T00:00:00"\nend = "2026-01-08T00:00:00"\n'
    )
    path.write_text(text)
    shown = intake("roster", "--at", "2026-01-07T12:00", config=path).stdout
    first_row = next(line for line in shown.splitlines() if "2026-01-05" in line)
    assert "Bob Member" in first_row.split("│")[3] and "Alice" not in first_row


def test_someone_off_the_rota_can_cover_and_absent_members_take_no_cases(tmp_path: Path) -> None:
    data = base_settings(tmp_path)
    data["team"].append({"name": "Carol Member", "email": "carol@example.org", "roles": ["member"]})
    settings = settings_from(tmp_path, data)
    swap = Swap(
        member="carol@example.org",
        covers="alice@example.org",
        start=datetime(2026, 1, 5, 9, 0),
        end=datetime(2026, 1, 12, 9, 0),
    )
    away = Away(member="bob@example.org", start=datetime(2026, 1, 1), end=datetime(2026, 2, 1))
    settings = _with_overrides(settings, swaps=(swap,), away=(away,))
    assert duty_order(settings, WEEK_OF_JAN_5) == ["carol@example.org"]
    shift = shift_at(settings, WEEK_OF_JAN_5)
    assert shift.member.email == "carol@example.org"
