"""The `[retention]` table: how long a decided case's content is kept, by rule.

A case's clock starts when it is closed (`#status closed`) or, if it never is, when it was
resolved; it never runs out before the appeal window of an appealable decision has closed or a
temporary measure has ended. The first rule whose keys all match a case gives its period; a case
no rule matches gets `default`. "forever" keeps a case's content for good.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from intake.settings.policy import CaseKind
from intake.settings.types import Duration, Section, parse_duration

FOREVER = "forever"


def _keep_for(value: object) -> object:
    """'forever' is None (never purged); anything else is a duration."""
    if value == FOREVER or value is None:
        return None
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError(f"{value!r} is not 'forever' or a duration like '90d' or '2y'")


KeepFor = Annotated[timedelta | None, BeforeValidator(_keep_for)]


class RetentionRule(Section):
    """Cases matching every key given keep their content for `keep` after closing."""

    kind: CaseKind | None = None
    resolution: str | None = None
    status: Literal["resolved", "closed"] | None = None
    keep: KeepFor

    @model_validator(mode="after")
    def _names_something(self) -> RetentionRule:
        if self.kind is None and self.resolution is None and self.status is None:
            raise ValueError("a rule needs at least one of kind, resolution or status")
        return self

    def describe(self) -> str:
        """The rule as the settings file writes it, for purge records and listings."""
        keys = [
            f"{key} = {value!r}"
            for key, value in (
                ("kind", self.kind and str(self.kind)),
                ("resolution", self.resolution),
                ("status", self.status),
            )
            if value is not None
        ]
        return f"[[retention.rules]] {', '.join(keys)}"


class RetentionSettings(Section):
    # The daemon purges what is due every `every`; false leaves it to `intake purge`.
    purge: bool = True
    every: Duration = parse_duration("1d")
    default: KeepFor = Field(default=parse_duration("2y"))
    # None: the default rules (default_rules), which follow the ladder the file defines.
    rules: tuple[RetentionRule, ...] | None = None
    # Mail that made no case (auto-replies, bounces, bulk, refused mail) and emails about no
    # case (digests, alerts): their bytes and addresses go this long after they came or went.
    no_case: KeepFor = Field(default=parse_duration("90d"))
    # A policy the scheduled purge has not met on this database before (the first start of a
    # version with retention, or rules changed) purges nothing for this long: it says what it
    # will remove, in the log and in `intake check`, so that an upgrade or a mistyped rule
    # cannot remove years of records before anyone has read the list. `intake purge` by hand
    # does not wait.
    grace: Duration = parse_duration("7d")

    def effective_rules(self, most_severe: str | None) -> tuple[RetentionRule, ...]:
        """The rules the file gives, else the defaults: the most severe rung of the ladder (in
        the default ladder, permanent-ban) is kept forever, general mail 90 days."""
        if self.rules is not None:
            return self.rules
        general = RetentionRule(kind=CaseKind.GENERAL, keep=parse_duration("90d"))
        if most_severe is None:
            return (general,)
        return (RetentionRule(resolution=most_severe, keep=None), general)

    def periods(self, most_severe: str | None) -> list[tuple[str, str]]:
        """Every rule and period of the policy, as text (for its fingerprint)."""
        rules = [(rule.describe(), period(rule.keep)) for rule in self.effective_rules(most_severe)]
        return [("default", period(self.default)), ("no_case", period(self.no_case)), *rules]


def period(keep: timedelta | None) -> str:
    return FOREVER if keep is None else str(keep.total_seconds())
