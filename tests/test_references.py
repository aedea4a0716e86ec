"""Case references: what `format_reference` writes, `case_reference` finds again in any text."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from intake.store.references import case_reference, format_reference, reference_in

PREFIXES = st.from_regex(r"[A-Z][A-Z0-9]{1,9}", fullmatch=True)
YEARS = st.integers(min_value=2000, max_value=9999)
NUMBERS = st.integers(min_value=1, max_value=999_999)
WORDS = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(PREFIXES, YEARS, NUMBERS, WORDS, WORDS)
def test_a_written_reference_is_found_again(
    prefix: str, year: int, number: int, before: str, after: str
) -> None:
    assume(f"{prefix.lower()}-" not in before.lower())  # no other reference comes first
    ref = format_reference(prefix, year, number)
    assert case_reference(prefix, f"{before} [{ref}] {after}") == ref


@given(PREFIXES, YEARS, NUMBERS)
def test_a_reference_alone_round_trips_in_any_case(prefix: str, year: int, number: int) -> None:
    ref = format_reference(prefix, year, number)
    assert case_reference(prefix, ref) == ref
    assert case_reference(prefix, ref.lower()) == ref


def test_numbers_are_written_with_four_digits_at_least() -> None:
    assert format_reference("COC", 2026, 7) == "COC-2026-0007"
    assert format_reference("COC", 2026, 12345) == "COC-2026-12345"


def test_a_reference_glued_to_a_word_is_not_one() -> None:
    assert case_reference("COC", "see xCOC-2026-0001 and") is None
    assert case_reference("COC", "see COC-2026-0001x") is None
    assert case_reference("COC", "Re: [COC-2026-0001] update") == "COC-2026-0001"


def test_the_subject_is_asked_before_the_body() -> None:
    assert reference_in("COC", "About COC-2026-0002", "as in COC-2026-0001") == "COC-2026-0002"
    assert reference_in("COC", "About my case", "as in coc-2026-0001") == "COC-2026-0001"
    assert reference_in("COC", "About my case", "no reference") is None
