"""Shared fixtures: a fresh catalog per test on real SQLite and, when PROVENANCE_TEST_PG_URL is
set, on real PostgreSQL in a schema of its own for this test session (dropped afterwards)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from provenance.cli import app
from provenance.config import Settings
from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import Base

PG_URL = os.environ.get("PROVENANCE_TEST_PG_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
# shared/ lies beside the checkout, for developers and in CI alike.
FIXTURES = Path(
    os.environ.get("PROVENANCE_FIXTURES")
    or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)


def _with_search_path(url: str, schema: str) -> str:
    parsed = make_url(url)
    query = dict(parsed.query)
    query["options"] = f"-csearch_path={schema}"
    return parsed.set(query=query).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_session_url() -> Iterator[str]:
    """A fresh schema for this test session (per xdist worker), migrated once, dropped after."""
    if not PG_URL:
        pytest.skip("PROVENANCE_TEST_PG_URL not set")
    schema = f"prov_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = _with_search_path(PG_URL, schema)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "catalog.db"
    engine = make_engine(f"sqlite:///{path}", create_dirs=True)
    migrate.upgrade(engine)
    engine.dispose()
    return path


def _truncate_all(url: str) -> None:
    """Empty every table and put the schema version back at head (a test may have moved it)."""
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("UPDATE alembic_version SET version_num = :head"),
            {"head": migrate.head_revision()},
        )
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty catalog at head: a copied SQLite file, or the session's truncated PG schema."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "catalog.db"
        shutil.copy(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_session_url")
    _truncate_all(url)
    return url


@pytest.fixture
def settings(catalog_url: str, tmp_path: Path) -> Settings:
    return Settings(db_url=catalog_url, store_dir=tmp_path / "objects", allow_private=True)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """The permissive export-test policy (tests.test_export.POLICY) as a file."""
    from tests.test_export import POLICY

    path = tmp_path / "permissive.toml"
    path.write_text(POLICY)
    return path


class Cli:
    """Runs `provenance` commands in-process against the test catalog."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner = CliRunner()

    def __call__(self, *args: str, expect: int | None = 0, **kwargs: Any) -> Any:
        argv = ["--db", self.settings.db_url, "--store", str(self.settings.store_dir), *args]
        result = self.runner.invoke(app, argv, catch_exceptions=False, **kwargs)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code} != {expect}\nstdout:\n{result.stdout}\n"
                f"stderr:\n{result.stderr}"
            )
        return result


@pytest.fixture
def cli(settings: Settings) -> Cli:
    return Cli(settings)


def _missing_fixtures(*, module_level: bool = False) -> NoReturn:
    """The real C2PA/IPTC images are not redistributed with the checkout: without them their
    tests skip, saying where to point; CI sets PROVENANCE_REQUIRE_FIXTURES=1 to fail instead."""
    message = (f"real C2PA/IPTC fixtures not found at {FIXTURES}; set PROVENANCE_FIXTURES to "
               "the shared/fixtures folder")
    if os.environ.get("PROVENANCE_REQUIRE_FIXTURES"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=module_level)


def fixture_expectations() -> dict[str, dict[str, Any]]:
    """expectations.json of the shared fixtures, read at import by the modules that test them."""
    path = FIXTURES / "expectations.json"
    if not path.exists():
        _missing_fixtures(module_level=True)
    loaded: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return loaded


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.exists():
        _missing_fixtures()
    return FIXTURES
