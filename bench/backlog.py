# ruff: noqa: RUF001  (the backlog is deliberately multilingual text)
"""A reproducible backlog of ordinary human reports, as raw RFC 5322 bytes (CRLF line endings).

Every message must become a ticket: no Auto-Submitted, List-*, Precedence, role senders or
automatic-reply subjects. What varies, all drawn from one seeded ``random.Random``:

* text size: 1-50 KB, log-uniform (most reports are short, a few are long);
* structure: text/plain, text/html only, or multipart/alternative; about 10 % carry one
  attachment of 100-300 KB (multipart/mixed);
* charset: utf-8, iso-8859-1, iso-8859-15, windows-1252, koi8-r, shift_jis, with 8bit,
  quoted-printable or base64 bodies, and RFC 2047 encoded words in Subject and From.
"""

from __future__ import annotations

import base64
import html
import math
import quopri
import random
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TypeVar

CRLF = "\r\n"
ATTACHMENT_SHARE = 0.10
TEXT_MIN, TEXT_MAX = 1024, 50 * 1024
ATTACHMENT_MIN, ATTACHMENT_MAX = 100 * 1024, 300 * 1024
REPORTERS = 400  # distinct senders; each message is still a new report

T = TypeVar("T")


@dataclass(frozen=True)
class Language:
    code: str
    charsets: tuple[tuple[str, int], ...]  # (charset, weight)
    names: tuple[str, ...]
    subjects: tuple[str, ...]
    sentences: tuple[str, ...]
    extras: dict[str, str]  # charset -> a sentence only that charset (and utf-8) can carry
    wide: bool = False  # no spaces between words: wrap by characters


ENGLISH = Language(
    code="en",
    charsets=(("utf-8", 1),),
    names=("Sam Taylor", "Priya Natarajan", "Jordan Lee", "Chris O'Neill", "Alex Morgan"),
    subjects=(
        "Harassment in the #general channel",
        "Report about behaviour at the meetup",
        "Someone keeps sending me private messages",
        "Inappropriate comments during the conference talk",
        "Concern about a maintainer's tone in reviews",
    ),
    sentences=(
        "I want to report something that happened during last week's community call.",
        "A participant repeatedly interrupted me and made comments about my accent.",
        "After I asked them to stop, they started sending me private messages.",
        "Several people saw it, and one of them asked me whether I was all right.",
        "I have kept screenshots of the messages in case you need them.",
        "This is not the first time; it happened at the spring meetup as well.",
        "I do not want this person to know that I am the one who reported it.",
        "Please let me know what information you need from me.",
        "I felt uneasy going back to the venue the next day.",
        "The comments were made in the public channel, with around forty people reading.",
    ),
    extras={"utf-8": "It made me feel “unwelcome” — honestly, I almost left the project 😞."},
)

GERMAN = Language(
    code="de",
    charsets=(("utf-8", 2), ("iso-8859-1", 3), ("iso-8859-15", 2), ("windows-1252", 2)),
    names=("Jürgen Müller", "Ännchen Weiß", "Søren Østergård", "Françoise Lefèvre", "Zoë Brandt"),
    subjects=(
        "Belästigung beim Treffen in München",
        "Beschwerde über Äußerungen im Forum",
        "Vorfall während der Konferenz - bitte um Rückmeldung",
        "Signalement : propos déplacés lors de la réunion",
        "Grenzüberschreitendes Verhalten im Chat",
    ),
    sentences=(
        "Ich möchte einen Vorfall melden, der sich beim letzten Treffen ereignet hat.",
        "Ein Teilnehmer hat mehrfach abfällige Bemerkungen über meine Herkunft gemacht.",
        "Als ich ihn gebeten habe aufzuhören, hat er mir private Nachrichten geschickt.",
        "Mehrere Personen haben das gehört, aber niemand hat etwas gesagt.",
        "Ich habe Bildschirmfotos der Nachrichten gespeichert, falls Sie sie benötigen.",
        "Es ist nicht das erste Mal; schon im Frühjahr gab es ähnliche Äußerungen.",
        "Bitte behandeln Sie meine Meldung vertraulich, ich möchte nicht genannt werden.",
        "Je voudrais signaler des propos déplacés tenus pendant la réunion de jeudi.",
        "La personne a continué malgré mes demandes répétées d'arrêter.",
        "Ich fühle mich seitdem bei den Treffen nicht mehr sicher, das ist schade.",
    ),
    extras={
        "iso-8859-15": "Er hat sogar angeboten, mir 50 € zu zahlen, wenn ich schweige.",
        "windows-1252": "Er sagte „das ist doch nur Spaß“ – es war aber keiner… 50 € hin oder her.",
        "utf-8": "Er sagte „das ist doch nur Spaß“ – es war aber keiner… 50 € hin oder her.",
    },
)

RUSSIAN = Language(
    code="ru",
    charsets=(("koi8-r", 2), ("utf-8", 1)),
    names=("Иван Петров", "Анна Смирнова", "Ольга Кузнецова", "Дмитрий Соколов"),
    subjects=(
        "Жалоба на поведение участника",
        "Оскорбления в чате проекта",
        "Сообщение о преследовании после встречи",
    ),
    sentences=(
        "Я хочу сообщить о случае, который произошёл на прошлой встрече сообщества.",
        "Один из участников несколько раз грубо высказывался о моей внешности.",
        "Когда я попросила его прекратить, он начал писать мне личные сообщения.",
        "Это видели несколько человек, но никто ничего не сказал.",
        "Я сохранила снимки экрана с сообщениями, если они понадобятся.",
        "Пожалуйста, не сообщайте ему, что жалоба поступила от меня.",
        "После этого я не чувствую себя в безопасности на встречах.",
    ),
    extras={},
)

JAPANESE = Language(
    code="ja",
    charsets=(("shift_jis", 2), ("utf-8", 1)),
    names=("山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲"),
    subjects=(
        "ミートアップでのハラスメントの報告",
        "チャットでの不適切な発言について",
        "行動規範違反の報告",
    ),
    sentences=(
        "先週のミートアップで起きた出来事について報告します。",
        "ある参加者が私の外見について何度も不適切な発言をしました。",
        "やめるようにお願いしたところ、個人的なメッセージが届くようになりました。",
        "何人かの参加者もその場にいましたが、誰も何も言いませんでした。",
        "メッセージのスクリーンショットを保存してありますので、必要であればお送りします。",
        "私が報告したことは相手に知らせないでください。",
        "それ以来、イベントに参加するのが不安です。",
    ),
    extras={},
    wide=True,
)

LANGUAGES: tuple[tuple[Language, int], ...] = (
    (ENGLISH, 5),
    (GERMAN, 3),
    (RUSSIAN, 1),
    (JAPANESE, 1),
)
ATTACHMENT_KINDS: tuple[tuple[str, str, bytes], ...] = (
    ("screenshot.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("chat-log.pdf", "application/pdf", b"%PDF-1.4\n"),
    ("photo.jpg", "image/jpeg", b"\xff\xd8\xff\xe0"),
    ("Bildschirmfoto vom Treffen.png", "image/png", b"\x89PNG\r\n\x1a\n"),
    ("evidence.zip", "application/zip", b"PK\x03\x04"),
)


@dataclass(frozen=True)
class Part:
    """A MIME entity: its header lines and its encoded body (CRLF line endings)."""

    headers: tuple[str, ...]
    body: bytes

    def to_bytes(self) -> bytes:
        return (CRLF.join(self.headers) + CRLF + CRLF).encode("ascii") + self.body


def weighted(rng: random.Random, options: Sequence[tuple[T, int]]) -> T:
    return rng.choices([item for item, _ in options], [weight for _, weight in options])[0]


def log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


# -- text ----------------------------------------------------------------------------------------


def wrap(paragraph: str, wide: bool) -> list[str]:
    """Lines of at most ~72 characters (36 for CJK, which are two columns and 2 bytes wide)."""
    if wide:
        return [paragraph[i : i + 36] for i in range(0, len(paragraph), 36)]
    lines: list[str] = []
    current = ""
    for word in paragraph.split():
        if current and len(current) + 1 + len(word) > 72:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return [*lines, current] if current else lines


def paragraphs(rng: random.Random, language: Language, charset: str, size: int) -> list[str]:
    """Paragraphs of sentences whose encoded size is about ``size`` bytes."""
    pool = list(language.sentences)
    if charset in language.extras:
        pool.append(language.extras[charset])
    joiner = "" if language.wide else " "
    found: list[str] = []
    total = 0
    while total < size:
        paragraph = joiner.join(rng.choice(pool) for _ in range(rng.randint(2, 6)))
        found.append(paragraph)
        total += len(paragraph.encode(charset)) + 4
    return found


def plain_text(name: str, body: list[str], wide: bool) -> str:
    lines = [f"Hello, this is {name}.", ""]
    for paragraph in body:
        lines.extend([*wrap(paragraph, wide), ""])
    lines.append(name)
    return CRLF.join(lines) + CRLF


def html_text(name: str, body: list[str], charset: str) -> str:
    paras = "".join(f"<p>{html.escape(paragraph)}</p>\r\n" for paragraph in body)
    return (
        f'<html><head><meta http-equiv="Content-Type" content="text/html; charset={charset}">'
        f"</head>\r\n<body>\r\n<p>Hello, this is {html.escape(name)}.</p>\r\n"
        f"{paras}<p><b>{html.escape(name)}</b></p>\r\n</body></html>\r\n"
    )


# -- encodings -----------------------------------------------------------------------------------


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def transfer_encoding(rng: random.Random, charset: str, wide: bool) -> str:
    if charset == "shift_jis":
        return "base64"
    if wide or charset == "koi8-r":
        return rng.choice(("base64", "8bit"))
    return rng.choice(("quoted-printable", "8bit", "base64" if charset == "utf-8" else "8bit"))


def encode_body(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return crlf(base64.encodebytes(data))
    if cte == "quoted-printable":
        return crlf(quopri.encodestring(crlf(data).replace(b"\r\n", b"\n")))
    return crlf(data)


def text_part(text: str, subtype: str, charset: str, cte: str) -> Part:
    headers = (
        f'Content-Type: text/{subtype}; charset="{charset}"',
        f"Content-Transfer-Encoding: {cte}",
    )
    return Part(headers, encode_body(text.encode(charset), cte))


def encoded_words(text: str, charset: str) -> str:
    """RFC 2047 words (Q for one-byte charsets, B otherwise), folded, each under 76 characters."""
    if text.isascii():
        return text
    one_byte = charset.startswith(("iso-8859", "windows-"))
    step = 14 if one_byte else 9
    words = []
    for start in range(0, len(text), step):
        chunk = text[start : start + step].encode(charset)
        if one_byte:
            encoded = "".join(
                chr(b) if chr(b).isalnum() and b < 128 else "_" if b == 32 else f"={b:02X}"
                for b in chunk
            )
            words.append(f"=?{charset}?Q?{encoded}?=")
        else:
            words.append(f"=?{charset}?B?{base64.b64encode(chunk).decode()}?=")
    return (CRLF + " ").join(words)


# -- structure -----------------------------------------------------------------------------------


def multipart(subtype: str, parts: Sequence[Part], boundary: str) -> Part:
    chunks = [b"This is a multi-part message in MIME format.\r\n"]
    for part in parts:
        chunks.append(f"\r\n--{boundary}\r\n".encode() + part.to_bytes())
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    return Part((f'Content-Type: multipart/{subtype}; boundary="{boundary}"',), b"".join(chunks))


def attachment_part(rng: random.Random) -> Part:
    filename, content_type, magic = rng.choice(ATTACHMENT_KINDS)
    data = magic + rng.randbytes(rng.randint(ATTACHMENT_MIN, ATTACHMENT_MAX) - len(magic))
    if filename.isascii() and " " not in filename:
        disposition = f'attachment; filename="{filename}"'
    else:
        disposition = f"attachment; filename*=utf-8''{urllib.parse.quote(filename)}"
    headers = (
        f"Content-Type: {content_type}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: {disposition}",
    )
    return Part(headers, crlf(base64.encodebytes(data)))


def body_part(rng: random.Random, index: int, language: Language, charset: str, name: str) -> Part:
    body = paragraphs(rng, language, charset, log_uniform(rng, TEXT_MIN, TEXT_MAX))
    shape = rng.choices(("plain", "html", "alternative"), (60, 15, 25))[0]
    cte = transfer_encoding(rng, charset, language.wide)
    plain = text_part(plain_text(name, body, language.wide), "plain", charset, cte)
    if shape == "plain":
        return plain
    rich = text_part(html_text(name, body, charset), "html", charset, cte)
    if shape == "html":
        return rich
    return multipart("alternative", (plain, rich), f"=_alt_{index:06d}")


def message(rng: random.Random, index: int, seed: int) -> bytes:
    language = weighted(rng, LANGUAGES)
    charset = weighted(rng, language.charsets)
    reporter = rng.randrange(REPORTERS)
    name = language.names[reporter % len(language.names)]
    part = body_part(rng, index, language, charset, name)
    if rng.random() < ATTACHMENT_SHARE:
        part = multipart("mixed", (part, attachment_part(rng)), f"=_mix_{index:06d}")
    sent = datetime(2026, 11, 1 + index % 28, 10, index % 60, tzinfo=timezone(timedelta(hours=1)))
    headers = (
        f"From: {encoded_words(name, charset)} <reporter{reporter}@example.net>",
        "To: Example Code of Conduct Team <info@example.org>",
        f"Subject: {encoded_words(rng.choice(language.subjects), charset)}",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: <bench-{seed}-{index}@example.net>",
        "MIME-Version: 1.0",
        *part.headers,
    )
    return Part(headers, part.body).to_bytes()


def build_backlog(count: int, seed: int) -> list[bytes]:
    """``count`` messages; the same seed always gives the same bytes."""
    rng = random.Random(seed)
    return [message(rng, index, seed) for index in range(count)]
