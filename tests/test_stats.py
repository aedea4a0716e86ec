"""`intake stats`: anonymous counts and medians; no small count may give a case away."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from intake.conduct.stats import (
    BELOW_MIN_COUNT,
    BREAKDOWN,
    COMPLEMENTARY,
    OptionError,
    case_stats,
    suppression,
    text_report,
    window,
)
from intake.runtime.cycle import running
from intake.settings.loading import load_settings
from intake.settings.schema import Settings, Stats
from intake.store.models import Ticket, TicketStatus
from tests.support import base_settings, intake, write_settings

WHEN = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)
_numbers = itertools.count(1)

SHOWN = None
SMALL = {"count": None, "suppressed": True, "reason": BELOW_MIN_COUNT}
WITHHELD = {"count": None, "suppressed": True, "reason": COMPLEMENTARY}


async def add(
    count: int = 1,
    *,
    kind: str = "report",
    urgent: bool = False,
    status: TicketStatus = TicketStatus.NEW,
    resolution: str | None = None,
    created: datetime = WHEN,
    acknowledged: timedelta | None = None,
    responded: timedelta | None = None,
) -> None:
    """`count` cases, each with a reference, reporter and subject the report must never show."""
    for _ in range(count):
        n = next(_numbers)
        ticket = await Ticket.create(
            ref=f"COC-2026-{n:04d}",
            kind=kind,
            reporter_email=f"reporter{n}@example.net",
            reporter_name=f"Reporter Number{n}",
            subject=f"Confidential subject {n}",
            urgent=urgent,
            status=status,
            resolution=resolution,
            acknowledged_at=None if acknowledged is None else created + acknowledged,
            first_response_at=None if responded is None else created + responded,
        )
        await Ticket.filter(id=ticket.id).update(created_at=created)  # auto_now_add on create


def with_min_count(settings: Settings, min_count: int) -> Settings:
    return settings.model_copy(update={"stats": Stats(min_count=min_count)})


async def test_counts_by_kind_urgency_resolution_and_status(db: Settings) -> None:
    await add(6, kind="report", status=TicketStatus.RESOLVED, resolution="warning")
    await add(5, kind="report", urgent=True, status=TicketStatus.INVESTIGATING)
    await add(5, kind="appeal", status=TicketStatus.CLOSED, resolution="no-action")

    report = await case_stats(db, None, None)

    assert report["min_count"] == 5
    assert report["total"] == {"count": 16}
    assert report["kind"] == {"report": {"count": 11}, "appeal": {"count": 5}}
    assert report["urgency"] == {"urgent": {"count": 5}, "not urgent": {"count": 11}}
    assert list(report["resolution"].items()) == [  # the ladder's order, unresolved last
        ("no-action", {"count": 5}),
        ("warning", {"count": 6}),
        ("unresolved", {"count": 5}),
    ]
    assert list(report["status"].items()) == [  # zero counts (new, waiting) are left out
        ("investigating", {"count": 5}),
        ("resolved", {"count": 6}),
        ("closed", {"count": 5}),
    ]


async def test_small_counts_are_suppressed_and_one_more_withheld_to_protect_them(
    db: Settings,
) -> None:
    await add(12, kind="report")
    await add(6, kind="appeal", urgent=True)
    await add(2, kind="retaliation")

    report = await case_stats(db, None, None)

    assert report["total"] == {"count": 20}
    # 20 - 12 would give the retaliation reports away: the appeals are withheld with them.
    assert report["kind"] == {"report": {"count": 12}, "appeal": WITHHELD, "retaliation": SMALL}
    assert report["urgency"] == {"urgent": {"count": 6}, "not urgent": {"count": 14}}
    text = text_report(report)
    kinds = dict(next(rows for title, _, rows in text.tables if title == "Cases by kind"))
    assert kinds == {
        "report": "12",
        "appeal": "withheld",
        "retaliation": "fewer than 5",
        "all": "20",
    }


def test_the_suppression_rule() -> None:
    # Nothing small: everything shown.
    assert suppression({"report": 9, "appeal": 5}, 5) == {"report": SHOWN, "appeal": SHOWN}
    # The total itself is small: every count is, and there is nothing to subtract from.
    assert suppression({"report": 3, "appeal": 1}, 5) == {
        "report": BELOW_MIN_COUNT,
        "appeal": BELOW_MIN_COUNT,
    }
    # One small count: the smallest shown one is withheld with it (ties by name).
    assert suppression({"a": 1, "b": 7, "c": 7, "d": 20}, 5) == {
        "a": BELOW_MIN_COUNT,
        "b": COMPLEMENTARY,
        "c": SHOWN,
        "d": SHOWN,
    }
    # Two small counts of one each: 22 - 20 = 2 would say so; one of 5 or more goes with them.
    assert suppression({"a": 1, "b": 1, "c": 20}, 5) == {
        "a": BELOW_MIN_COUNT,
        "b": BELOW_MIN_COUNT,
        "c": COMPLEMENTARY,
    }
    # 1 and exactly 5 add up to 6, which only 1 + 5 can: the next one is withheld as well.
    assert suppression({"a": 1, "b": 5, "c": 9, "d": 30}, 5) == {
        "a": BELOW_MIN_COUNT,
        "b": COMPLEMENTARY,
        "c": COMPLEMENTARY,
        "d": SHOWN,
    }
    # When nothing else is left to withhold, the whole breakdown goes, small one unmarked.
    assert suppression({"urgent": 1, "not urgent": 5}, 5) == {
        "urgent": BREAKDOWN,
        "not urgent": BREAKDOWN,
    }


async def test_a_breakdown_that_cannot_be_protected_is_withheld_whole(db: Settings) -> None:
    for status in TicketStatus:  # five small counts and nothing to withhold with them
        await add(status=status, urgent=status == TicketStatus.NEW)
    await add(kind="appeal")

    report = await case_stats(db, None, None)

    assert report["total"] == {"count": 6}
    assert report["status"] == {"suppressed": True, "reason": BREAKDOWN}
    assert report["urgency"] == {"suppressed": True, "reason": BREAKDOWN}  # 1 and 5
    assert report["kind"] == {"suppressed": True, "reason": BREAKDOWN}  # 5 and 1
    assert report["resolution"] == {"unresolved": {"count": 6}}
    tables = {title: rows for title, _, rows in text_report(report).tables}
    assert tables["Cases by status"] == [["(not shown)", "withheld"], ["all", "6"]]


@pytest.mark.parametrize("min_count", [3, 5])
def test_no_suppressed_count_can_be_worked_out_from_what_is_published(min_count: int) -> None:
    """Every breakdown of up to four categories: with the total, the counts shown and the
    bounds each label gives, every suppressed count could still be at least two numbers."""
    for size in range(1, 5):
        for values in itertools.product(range(1, 2 * min_count + 3), repeat=size):
            counts = {f"c{i}": value for i, value in enumerate(values)}
            total = sum(values)
            if total < min_count:
                continue  # the total is suppressed too: there is nothing to subtract from
            reasons = suppression(counts, min_count)
            if BREAKDOWN in reasons.values():
                assert set(reasons.values()) == {BREAKDOWN}
                continue  # only the total is published, not even which categories occur
            bounds = {
                BELOW_MIN_COUNT: (1, min_count - 1),
                COMPLEMENTARY: (min_count, total),
            }
            hidden = {name: bounds[r] for name, r in reasons.items() if r is not None}
            rest = total - sum(counts[name] for name, r in reasons.items() if r is None)
            for name, (low, high) in hidden.items():
                others = [b for other, b in hidden.items() if other != name]
                least = max(low, rest - sum(h for _, h in others))
                most = min(high, rest - sum(lo for lo, _ in others))
                assert most > least, (counts, reasons, name)


async def test_medians_over_odd_and_even_counts(db: Settings) -> None:
    for hours in (1, 2, 3, 4, 5):
        await add(acknowledged=timedelta(hours=hours), responded=timedelta(hours=hours))
    await add(acknowledged=timedelta(minutes=1), responded=timedelta(hours=6))

    report = await case_stats(db, None, None)

    # Six acknowledgements: between 2 and 3 hours. Six first responses: between 3 and 4 hours.
    assert report["time_to_acknowledgement"] == {"median_seconds": 9000, "cases": {"count": 6}}
    assert report["time_to_first_response"] == {"median_seconds": 12600, "cases": {"count": 6}}

    await add(acknowledged=timedelta(days=2), responded=timedelta(days=3))
    report = await case_stats(db, None, None)
    assert report["time_to_acknowledgement"] == {"median_seconds": 10800, "cases": {"count": 7}}
    assert report["time_to_first_response"] == {"median_seconds": 14400, "cases": {"count": 7}}
    text = text_report(report)
    rows = next(rows for title, _, rows in text.tables if title.startswith("Median"))
    assert rows == [["acknowledgement", "3 hours", "7"], ["first response", "4 hours", "7"]]


async def test_a_median_over_few_cases_is_suppressed_and_so_is_a_telling_number(
    db: Settings,
) -> None:
    await add(2, acknowledged=timedelta(hours=1), responded=timedelta(hours=2))
    await add(5, acknowledged=timedelta(hours=1))
    await add(1)

    report = await case_stats(db, None, None)

    # 7 of the 8 acknowledged: "7" would say that one case was not; the median (over 7) stays.
    assert report["time_to_acknowledgement"] == {"median_seconds": 3600, "cases": WITHHELD}
    # Two first responses: neither the median nor how many.
    assert report["time_to_first_response"] == {
        "median_seconds": None,
        "suppressed": True,
        "reason": BELOW_MIN_COUNT,
        "cases": SMALL,
    }
    rows = next(rows for title, _, rows in text_report(report).tables if title.startswith("Med"))
    assert rows == [
        ["acknowledgement", "1 hour", "withheld"],
        ["first response", "fewer than 5", "fewer than 5"],
    ]

    # 5 of 6 acknowledged: a median shown would say "at least 5", and so exactly 5: withheld.
    await Ticket.all().delete()
    await add(5, acknowledged=timedelta(hours=1))
    await add(1)
    breakdown = {"count": None, "suppressed": True, "reason": BREAKDOWN}
    report = await case_stats(db, None, None)
    assert report["time_to_acknowledgement"] == {
        "median_seconds": None,
        "suppressed": True,
        "reason": BREAKDOWN,
        "cases": breakdown,
    }

    await Ticket.all().delete()
    report = await case_stats(db, None, None)
    assert report["total"] == {"count": 0} and report["kind"] == {}
    assert report["time_to_acknowledgement"] == {"median_seconds": None, "cases": {"count": 0}}


async def test_the_window_runs_from_the_first_day_through_the_whole_last_day(
    db: Settings,
) -> None:
    await add(1, created=datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
    await add(2, created=datetime(2026, 2, 1, 0, 0, tzinfo=UTC))
    await add(4, created=datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))
    await add(8, created=datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    settings = with_min_count(db, 1)

    async def total(first: str | None, last: str | None) -> int:
        count: int = (await case_stats(settings, *window(first, last)))["total"]["count"]
        return count

    assert await total("2026-02-01", "2026-02-28") == 2 + 4
    assert await total("2026-02-01", None) == 2 + 4 + 8
    assert await total(None, "2026-02-28") == 1 + 2 + 4
    assert await total(None, None) == 15
    assert await total("2026-02-28", "2026-02-28") == 4

    report = await case_stats(settings, *window("2026-02-01", "2026-02-28"))
    assert report["created_from"] == "2026-02-01T00:00:00+00:00"
    assert report["created_before"] == "2026-03-01T00:00:00+00:00"


def test_a_bad_day_names_its_option() -> None:
    for first, last, option, message in [
        ("2026-02-30", None, "--from", "'2026-02-30' is not a date (YYYY-MM-DD)"),
        (None, "2026-2-1", "--to", "'2026-2-1' is not a date (YYYY-MM-DD)"),
        ("2026-03-01", "2026-02-01", "--to", "2026-02-01 is before --from 2026-03-01"),
    ]:
        with pytest.raises(OptionError) as caught:
            window(first, last)
        assert caught.value.format_message() == f"Invalid value for '{option}': {message}"


async def test_nothing_identifies_a_case(db: Settings) -> None:
    await add(5, kind="report", resolution="warning")
    await add(2, kind="appeal", urgent=True, acknowledged=timedelta(hours=1))
    tickets = await Ticket.all()

    report = await case_stats(db, None, None)
    text = text_report(report)
    published = json.dumps(report) + repr(text)

    for ticket in tickets:
        for secret in (ticket.ref, ticket.reporter_email, ticket.reporter_name, ticket.subject):
            assert secret not in published
    assert "@" not in published and "COC-" not in published


async def test_the_command_end_to_end(tmp_path: Path) -> None:
    config = write_settings(tmp_path, base_settings(tmp_path))
    async with running(load_settings(config)):
        await add(7, kind="report", acknowledged=timedelta(hours=2))
        await add(
            2,
            kind="appeal",
            created=datetime(2026, 2, 20, tzinfo=UTC),
            acknowledged=timedelta(hours=2),
        )
        await add(3, kind="report", created=datetime(2026, 3, 1, tzinfo=UTC))
        secrets = [t.subject for t in await Ticket.all()] + ["@", "COC-"]

    report: dict[str, Any] = json.loads(
        intake(
            "stats", "--from", "2026-02-01", "--to", "2026-02-28", "--json", config=config
        ).stdout
    )
    assert report["total"] == {"count": 9}
    assert report["kind"] == {"report": WITHHELD, "appeal": SMALL}
    assert report["time_to_acknowledgement"] == {"median_seconds": 7200, "cases": {"count": 9}}

    table = intake("stats", "--to", "2026-02-28", config=config).stdout
    assert "Cases created before 2026-03-01 00:00 UTC" in table
    assert "Cases by kind" in table and "fewer than 5" in table and "2 hours" in table
    assert not any(secret in table for secret in secrets)

    bad = intake("stats", "--from", "yesterday", config=config, check=False)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "intake: Invalid value for '--from': 'yesterday' is not a date (YYYY-MM-DD)"
    ]
