"""Conflicts of interest and urgent wording: phrases from settings, matched whole-word, any case."""

from __future__ import annotations

from pathlib import Path

from intake.conduct.conflicts import named_members
from intake.mail.parse import parse_message
from intake.mail.phrases import find, places
from intake.settings.schema import Settings
from tests.support import base_settings, make_mail, settings_from


def _settings(tmp_path: Path) -> Settings:
    data = base_settings(tmp_path)
    data["team"][0].update(aliases=["Ally"], handles=["@alice_l"])
    return settings_from(tmp_path, data)


def _named(settings: Settings, **mail: object) -> list[str]:
    message = parse_message(make_mail(**mail))  # type: ignore[arg-type]
    return [conflict.member.email for conflict in named_members(settings, message)]


def test_a_member_is_named_by_address_name_alias_or_handle_in_any_case(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for body in (
        "It was ALICE@example.org who wrote it.",
        "alice lead deleted my post.",
        "Ally mocked me.",
        "The account @Alice_L keeps posting about me.",
    ):
        assert _named(settings, body=body) == ["alice@example.org"], body


def test_the_subject_and_attachment_names_count_too(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert _named(settings, subject="About Bob Member", body="See above.") == ["bob@example.org"]
    attachment = [("chat-with-ally.png", "image/png", b"png")]
    assert _named(settings, body="Screenshot attached.", attachments=attachment) == []
    attachment = [("ally screenshot.png", "image/png", b"png")]
    assert _named(settings, body="Screenshot attached.", attachments=attachment) == [
        "alice@example.org"
    ]


def test_part_of_a_word_is_not_a_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert (
        _named(
            settings,
            body="Totally unacceptable; she rallyed others and wrote to alice@example.org.uk",
        )
        == []
    )


def test_the_evidence_is_kept_for_the_case(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    message = parse_message(make_mail(body="Ally mocked me."))
    [conflict] = named_members(settings, message)
    assert str(conflict) == "alice@example.org is named: body contains 'Ally'"


def test_urgent_wording_is_found_in_any_configured_language(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    phrases = settings.classification.urgent_phrases
    where = settings.classification.urgent_where
    german = parse_message(make_mail(body="Er hat gedroht, mich umzubringen. Ich bin in Gefahr."))
    match = find(phrases, where, places(german))
    assert match is not None and match.language == "de"
    calm = parse_message(make_mail(body="He was rude about my slides in the meeting."))
    assert find(phrases, where, places(calm)) is None
