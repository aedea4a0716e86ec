"""Who is on duty: weekly rotation in local time, hand-over at the configured hour."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from intake.roster import shift_at, upcoming_shifts
from tests.support import base_settings, settings_from

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
