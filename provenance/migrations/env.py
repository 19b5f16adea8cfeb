"""Alembic environment: uses the connection handed over by provenance.db.migrate, or the URL
from alembic.ini / -x db=URL when run from the `alembic` command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from provenance.db.engine import make_engine
from provenance.db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("db") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the catalog URL with `alembic -x db=URL ...`")
    engine = make_engine(url, create_dirs=True)
    with engine.connect() as conn:
        _configure_and_run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_migrations_online()
