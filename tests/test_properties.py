"""Property tests: generated MIME, well formed or not, never breaks parsing or classifying."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.conduct.kinds import MailKind
from intake.engine.screen import MachineMail
from intake.mail.parse import parse_message
from tests.support import classify

KINDS = {*MachineMail, *MailKind}
HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Auto-Submitted",
        "Precedence",
        "Return-Path",
        "List-Id",
        "Date",
        "X-Anything",
    ]
)
HEADER_BYTES = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" "))
# Derandomized: the same examples on every run, so CI never meets a new one by chance; a
# newly found failure is reproduced by changing the seed here.
FAST = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PRINTABLE = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x1c\x1d\x1e\x85"
    ),
    min_size=1,
    max_size=80,
).filter(lambda name: name.strip() != "")


@FAST
@given(
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_BYTES), max_size=12),
    body=st.binary(max_size=2000),
    line_end=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_bytes_under_any_headers_parse_and_classify(
    headers: list[tuple[str, bytes]], body: bytes, line_end: bytes
) -> None:
    raw = line_end.join(name.encode() + b": " + value for name, value in headers)
    raw += line_end + line_end + body
    message = parse_message(raw)
    assert classify(message).kind in KINDS
    assert all("\n" not in value and "\r" not in value for _, value in message.headers)
    for address in (message.from_, *message.to, *message.reply_to):
        if address is not None:
            assert "@" in address.email


@FAST
@given(
    subject=st.text(max_size=200),
    name=st.text(max_size=60),
    text=st.text(max_size=3000),
    html=st.none() | st.text(max_size=1000),
    attachments=st.lists(st.tuples(PRINTABLE, st.binary(max_size=3000)), max_size=3),
)
def test_well_formed_mail_round_trips(
    subject: str, name: str, text: str, html: str | None, attachments: list[tuple[str, bytes]]
) -> None:
    message = EmailMessage()
    clean = "".join(ch for ch in subject if ch.isprintable()).strip()
    message["Subject"] = clean
    message["From"] = f'"{"".join(c for c in name if c.isalnum() or c == " ")}" <p@example.net>'
    message["To"] = "info@example.org"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, payload in attachments:
        message.add_attachment(
            payload, maintype="application", subtype="octet-stream", filename=filename
        )
    parsed = parse_message(bytes(message))
    assert parsed.from_ is not None and parsed.from_.email == "p@example.net"
    assert parsed.subject == " ".join(clean.split()) or parsed.subject == clean
    assert sorted(a.payload for a in parsed.attachments) == sorted(p for _, p in attachments)
    assert classify(parsed).kind in KINDS
