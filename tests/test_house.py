"""The test suite's house rules.

Test modules share helpers through helper modules (tests/support.py, tests/mailroom.py,
tests/servers/) and fixtures through tests/conftest.py, never by importing a test module or the
conftest: pytest loads those itself, and a test module imported by another is one that cannot be
moved or split without breaking its neighbours. A test that needs only a database must not start
the mail servers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from intake.settings.schema import Settings

TESTS = Path(__file__).resolve().parent
SERVER_FIXTURES = {"dovecot", "smtp_server", "sink", "imap_config", "imap_db"}


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` names, with a relative one resolved from ``package``."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything an import in ``source`` may load, at any depth (also
    inside functions); for ``from X import y``, both X and X.y, since y may be a module."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def forbidden(name: str) -> bool:
    """A test module (test_*) or a conftest, however it is reached (tests.test_cli, test_cli)."""
    return any(part == "conftest" or part.startswith("test_") for part in name.split("."))


def offences(source: str, package: str) -> list[str]:
    """``line N: name`` for each forbidden import in ``source``, in line order."""
    found = {(line, name) for line, name in imported(source, package) if forbidden(name)}
    return [f"line {line}: {name}" for line, name in sorted(found)]


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).parent.parts)


def test_no_module_under_tests_imports_a_test_module_or_the_conftest() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    assert TESTS / "servers" / "__init__.py" in modules  # the walk reaches the packages too
    found = {
        str(path.relative_to(TESTS.parent)): offence
        for path in modules
        if (offence := offences(path.read_text(encoding="utf-8"), _package_of(path)))
    }
    assert found == {}


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("from tests.test_cli import intake", "tests"),
        ("import tests.test_cli", "tests"),
        ("import tests.test_cli as cli", "tests"),
        ("from tests import test_conversations", "tests"),
        ("from tests.conftest import IMAP_PASSWORD_ENV", "tests"),
        ("from tests import conftest", "tests"),
        ("from test_cli import intake", "tests"),  # tests/ is on sys.path under pytest
        ("import conftest", "tests"),
        ("def helper() -> None:\n    from tests.test_cli import intake\n", "tests"),
        ("from ..test_cli import intake", "tests.servers"),
        ("from .. import conftest", "tests.servers"),
    ],
)
def test_the_check_catches_every_way_of_importing_them(source: str, package: str) -> None:
    assert offences(source, package) != []


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("from tests.support import intake, make_mail", "tests"),
        ("from tests.mailroom import Mailroom, open_case", "tests"),
        ("from tests.servers import Dovecot, SmtpSink", "tests"),
        ("from .ports import free_port", "tests.servers"),
        ("import pytest\nfrom intake.runtime.cycle import running", "tests"),
    ],
)
def test_the_check_lets_helper_modules_through(source: str, package: str) -> None:
    assert offences(source, package) == []


async def test_a_database_only_test_starts_no_mail_server(
    db: Settings, request: pytest.FixtureRequest
) -> None:
    assert SERVER_FIXTURES & set(request.fixturenames) == set()
    assert (db.mailbox.kind, db.outbound.kind) == ("maildir", "directory")
