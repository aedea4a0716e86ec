"""Anonymous case statistics for a transparency report (`intake stats`).

Only counts and medians leave this module: never a reference, a name, an address or a subject.

Small counts are suppressed: "one retaliation report in March" can point at the people
involved. With N = `[stats] min_count`:

1. A count from 1 to N-1 is suppressed: "fewer than N" (JSON reason `below_min_count`). A count
   of zero is left out. The total of the window is a count like any other; when it is below N,
   so is every other count in the report.
2. Complementary suppression. A breakdown (kind, urgency, resolution, status) adds up to the
   total, so a reader knows the total, the counts shown, that each "fewer than N" is 1 to N-1
   and that each "withheld" count is at least N. When a breakdown has a suppressed count and
   the total is shown, its smallest shown counts (ties: by name) are withheld too, one at a
   time, until at least one is withheld and the suppressed counts add up to more than the
   least they could be (1 for each "fewer than N", N for each "withheld"). From then on no
   suppressed count can be worked out: neither by subtraction (a single suppressed count) nor
   from the bounds (1 and exactly N, adding up to N + 1). Text "withheld", JSON reason
   `complementary`.
3. When even withholding every count of a breakdown does not get there (the total is 6 and
   the counts are 1 and 5), the whole breakdown is withheld: not even which categories occur
   is shown (JSON `{"suppressed": true, "reason": "breakdown"}` in place of the categories).
   Which one was small stays unknown, and so do five categories of one case each in a total of
   five, which a list of the categories that occur would give away.
4. A median over fewer than N cases is suppressed with its number of cases. That number splits
   the total into cases with and without an acknowledgement (or a first response), so it
   follows rules 1-3 on that split, as if both parts were published: a median can be shown
   while its number of cases is withheld. When rule 3 withholds the split (6 cases, 5 of them
   acknowledged), the median goes too, since showing it would say there are at least N.

Each breakdown is protected on its own. The report has no cross-tabulation (kind by urgency),
so breakdowns cannot be subtracted from one another; fields that move together (a resolved case
usually has a resolution) are not cross-checked.

JSON: `{"created_from": ISO | null, "created_before": ISO | null, "min_count": N,
"total": CELL, "kind": {"report": CELL, ...}, "urgency": {"urgent": CELL, "not urgent":
CELL}, "resolution": {..., "unresolved": CELL}, "status": {...}, "time_to_acknowledgement":
MEDIAN, "time_to_first_response": MEDIAN, "arrival_to_acknowledgement": MEDIAN with
"p95_seconds"}`, where a breakdown withheld whole (rule 3) is
`{"suppressed": true, "reason": "breakdown"}`, a CELL is `{"count": 12}` or
`{"count": null, "suppressed": true, "reason": REASON}` and a MEDIAN is
`{"median_seconds": 7200, "cases": CELL}`, `{"median_seconds": null, "suppressed": true,
"reason": "below_min_count" | "breakdown", "cases": CELL}`, or `{"median_seconds": null, "cases":
{"count": 0}}` when no case has one yet.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NamedTuple

import click

from intake.mail.sanitize import human_duration, short_duration
from intake.settings.policy import CaseKind
from intake.settings.schema import Settings
from intake.store.lag import lags_by_ticket
from intake.store.models import Ticket, TicketStatus

BELOW_MIN_COUNT = "below_min_count"
COMPLEMENTARY = "complementary"
BREAKDOWN = "breakdown"

KINDS = tuple(CaseKind)  # the order of the kind breakdown
URGENT, NOT_URGENT = "urgent", "not urgent"
UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class Case:
    """What the statistics read of one ticket: nothing that could identify it."""

    kind: str
    urgent: bool
    status: str
    resolution: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    first_response_at: datetime | None
    # From the arrival of the mail that opened the case to its acknowledgement leaving.
    acknowledgement_wait: timedelta | None = None


class OptionError(click.BadParameter):
    """A bad option value, shown as one line like the command line's other errors: click would
    print the command's usage first, because it attaches the context to the error."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"intake: {self.format_message()}", file=file, err=True)


def window(first_day: str | None, last_day: str | None) -> tuple[datetime | None, datetime | None]:
    """[start, end) in UTC for cases created from `first_day` through the whole of `last_day`
    (YYYY-MM-DD, as `--from` and `--to` give them); None leaves that side open."""
    start = _day(first_day, "--from")
    last = _day(last_day, "--to")
    if start is not None and last is not None and last < start:
        raise OptionError(f"{last_day} is before --from {first_day}", param_hint="'--to'")
    return start, last + timedelta(days=1) if last is not None else None


def _day(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:  # the shape of a date, but no such day
        pass
    raise OptionError(f"{text!r} is not a date (YYYY-MM-DD)", param_hint=f"'{option}'")


async def case_stats(
    settings: Settings, start: datetime | None, end: datetime | None
) -> dict[str, Any]:
    """The report for cases created in [start, end) (None: unbounded)."""
    query = Ticket.all()
    if start is not None:
        query = query.filter(created_at__gte=start)
    if end is not None:
        query = query.filter(created_at__lt=end)
    rows = await query.values_list(
        "id",
        "kind",
        "urgent",
        "status",
        "resolution",
        "created_at",
        "acknowledged_at",
        "first_response_at",
    )
    waits = await lags_by_ticket([row[0] for row in rows])
    cases = [
        Case(
            kind, urgent, str(status), resolution, created, acknowledged, responded, waits.get(id_)
        )
        for id_, kind, urgent, status, resolution, created, acknowledged, responded in rows
    ]
    return {
        "created_from": start.isoformat() if start else None,
        "created_before": end.isoformat() if end else None,
        **summarise(
            cases,
            min_count=settings.stats.min_count,
            resolutions=[resolution.name for resolution in settings.resolutions],
        ),
    }


def summarise(
    cases: Sequence[Case], *, min_count: int, resolutions: Sequence[str] = ()
) -> dict[str, Any]:
    """Counts and medians of `cases`, suppressed as the module docstring says. `resolutions`
    orders the resolution breakdown (the ladder); other names follow alphabetically."""
    total = len(cases)
    urgency = (URGENT if case.urgent else NOT_URGENT for case in cases)
    return {
        "min_count": min_count,
        "total": _cell(total, BELOW_MIN_COUNT if 0 < total < min_count else None),
        "kind": _breakdown((case.kind for case in cases), KINDS, min_count),
        "urgency": _breakdown(urgency, (URGENT, NOT_URGENT), min_count),
        "resolution": _breakdown(
            (case.resolution or UNRESOLVED for case in cases),
            (*resolutions, UNRESOLVED),
            min_count,
        ),
        "status": _breakdown(
            (case.status for case in cases), [str(status) for status in TicketStatus], min_count
        ),
        "time_to_acknowledgement": _median(
            [c.acknowledged_at - c.created_at for c in cases if c.acknowledged_at],
            total,
            min_count,
        ),
        "time_to_first_response": _median(
            [c.first_response_at - c.created_at for c in cases if c.first_response_at],
            total,
            min_count,
        ),
        "arrival_to_acknowledgement": _median(
            [c.acknowledgement_wait for c in cases if c.acknowledgement_wait is not None],
            total,
            min_count,
            p95=True,
        ),
    }


def suppression(counts: Mapping[str, int], min_count: int) -> dict[str, str | None]:
    """Why each count of a breakdown is suppressed (None: shown). The counts (none zero) add up
    to the breakdown's total."""
    reasons: dict[str, str | None] = {
        name: BELOW_MIN_COUNT if count < min_count else None for name, count in counts.items()
    }
    if sum(counts.values()) < min_count or BELOW_MIN_COUNT not in reasons.values():
        return reasons  # the total is suppressed too, or nothing is
    shown = sorted((count, name) for name, count in counts.items() if reasons[name] is None)
    while _exposed(counts, reasons, min_count) and shown:
        reasons[shown.pop(0)[1]] = COMPLEMENTARY
    if _exposed(counts, reasons, min_count):
        return dict.fromkeys(counts, BREAKDOWN)
    return reasons


def _exposed(counts: Mapping[str, int], reasons: Mapping[str, str | None], min_count: int) -> bool:
    """Could a suppressed count be worked out from the total and the bounds published?"""
    small = [counts[name] for name, reason in reasons.items() if reason == BELOW_MIN_COUNT]
    withheld = [counts[name] for name, reason in reasons.items() if reason == COMPLEMENTARY]
    least = len(small) + min_count * len(withheld)
    return not withheld or sum(small) + sum(withheld) <= least


def _cell(count: int, reason: str | None) -> dict[str, Any]:
    if reason is None:
        return {"count": count}
    return {"count": None, "suppressed": True, "reason": reason}


def _breakdown(values: Iterable[str], order: Sequence[str], min_count: int) -> dict[str, Any]:
    """The suppressed counts of each value, in `order`, then any others alphabetically."""
    counts = Counter(values)
    reasons = suppression(counts, min_count)
    if BREAKDOWN in reasons.values():
        return {"suppressed": True, "reason": BREAKDOWN}
    names = [name for name in order if name in counts]
    names += sorted(name for name in counts if name not in order)
    return {name: _cell(counts[name], reasons[name]) for name in names}


def _median(
    durations: list[timedelta], total: int, min_count: int, *, p95: bool = False
) -> dict[str, Any]:
    """The median of `durations` (and with `p95` their 95th percentile, both to a tenth of a
    second), over `len(durations)` of `total` cases."""
    over = len(durations)
    if over == 0:
        return {"median_seconds": None, "cases": {"count": 0}}
    split = {name: n for name, n in (("with", over), ("without", total - over)) if n}
    reason = suppression(split, min_count)["with"]
    cases = _cell(over, reason)
    if reason == BREAKDOWN or over < min_count:
        return {
            "median_seconds": None,
            "suppressed": True,
            "reason": BREAKDOWN if reason == BREAKDOWN else BELOW_MIN_COUNT,
            "cases": cases,
        }
    seconds = sorted(duration.total_seconds() for duration in durations)
    if not p95:
        return {"median_seconds": round(statistics.median(seconds)), "cases": cases}
    return {
        "median_seconds": round(statistics.median(seconds), 1),
        "p95_seconds": round(_percentile(seconds, 0.95), 1),
        "cases": cases,
    }


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value at or above `fraction` of them."""
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


class TextReport(NamedTuple):
    heading: str
    tables: list[tuple[str, list[str], list[list[str]]]]  # title, columns, rows
    note: str


def text_report(report: Mapping[str, Any]) -> TextReport:
    """The report as a heading, tables (for the command line's `_table`) and a footnote."""
    min_count: int = report["min_count"]

    def text(cell: Mapping[str, Any]) -> str:
        if cell.get("reason") == BELOW_MIN_COUNT:
            return f"fewer than {min_count}"
        return "withheld" if cell.get("suppressed") else str(cell["count"])

    def median(value: Mapping[str, Any]) -> str:
        if value["median_seconds"] is None:
            return text(value) if value.get("suppressed") else "-"
        return human_duration(timedelta(seconds=value["median_seconds"]))

    def seconds(value: Mapping[str, Any], key: str) -> str:
        if value.get(key) is None:
            return text(value) if value.get("suppressed") else "-"
        return short_duration(timedelta(seconds=value[key]))

    tables = [
        (
            f"Cases by {key}",
            [key, "cases"],
            (
                [["(not shown)", "withheld"]]
                if report[key].get("reason") == BREAKDOWN
                else [[name, text(cell)] for name, cell in report[key].items()]
            )
            + [["all", text(report["total"])]],
        )
        for key in ("kind", "urgency", "resolution", "status")
    ]
    tables.append(
        (
            "Median time from a case's creation",
            ["to", "median", "cases"],
            [
                [label, median(report[key]), text(report[key]["cases"])]
                for label, key in (
                    ("acknowledgement", "time_to_acknowledgement"),
                    ("first response", "time_to_first_response"),
                )
            ],
        )
    )
    wait = report["arrival_to_acknowledgement"]
    tables.append(
        (
            "Wait from a report's arrival to its acknowledgement",
            ["median", "95th percentile", "cases"],
            [[seconds(wait, "median_seconds"), seconds(wait, "p95_seconds"), text(wait["cases"])]],
        )
    )
    note = (
        f"Counts below {min_count} are shown as 'fewer than {min_count}'; 'withheld' hides a"
        " count that would give a smaller one away."
    )
    return TextReport(_window_text(report), tables, note)


def _window_text(report: Mapping[str, Any]) -> str:
    bounds = [
        f"{word} {datetime.fromisoformat(report[key]):%Y-%m-%d %H:%M} UTC"
        for word, key in (("from", "created_from"), ("before", "created_before"))
        if report[key]
    ]
    return f"Cases created {', '.join(bounds)}" if bounds else "All cases"
