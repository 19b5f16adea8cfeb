"""Opening the catalog: create/migrate it (init) or require it at head (every other command)."""

from __future__ import annotations

from sqlalchemy import Engine

from provenance.config import Settings
from provenance.db import migrate
from provenance.db.engine import check_reachable, make_engine


def init_catalog(settings: Settings) -> tuple[str | None, str]:
    """Create the catalog if needed and migrate it to head. Returns (before, after) revisions."""
    engine = make_engine(settings.db_url, create_dirs=True)
    try:
        check_reachable(engine)
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, "head")
        return before, migrate.head_revision()
    finally:
        engine.dispose()


def open_catalog(settings: Settings) -> Engine:
    """An engine on a catalog whose schema is at head, or a CatalogError (exit 3)."""
    engine = make_engine(settings.db_url)
    check_reachable(engine)
    migrate.require_head(engine)
    return engine


def catalog_revision(settings: Settings) -> tuple[str | None, str]:
    engine = make_engine(settings.db_url)
    try:
        check_reachable(engine)
        return migrate.current_revision(engine), migrate.head_revision()
    finally:
        engine.dispose()
