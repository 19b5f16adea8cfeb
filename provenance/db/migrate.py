"""Run Alembic programmatically on a catalog URL (init, db upgrade, db current, head check)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from provenance.errors import CatalogError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise CatalogError("no migrations found in the installed package")
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise CatalogError(
            f"catalog unreachable at {engine.url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        ) from exc


def upgrade(engine: Engine, target: str = "head") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def downgrade(engine: Engine, target: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, target)


def require_head(engine: Engine) -> None:
    """Exit-3 error unless the catalog exists and its schema is at the package's head."""
    current = current_revision(engine)
    if current is None:
        raise CatalogError(
            "the catalog is not initialised; run `provenance init` (or `provenance db upgrade`)"
        )
    head = head_revision()
    if current != head:
        raise CatalogError(
            f"the catalog schema is at {current}, this provenance needs {head}; "
            "run `provenance db upgrade`"
        )
