"""init, db upgrade/current."""

from __future__ import annotations

import typer

from provenance.cli import app
from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say
from provenance.services.catalog import catalog_revision, init_catalog

db_app = typer.Typer(help="Schema migrations of the catalog (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def init(ctx: typer.Context, db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Create the catalog and migrate it to the latest schema (idempotent)."""
    settings = settings_from(ctx, db=db)
    before, after = init_catalog(settings)
    if json_out:
        emit_json({"db": settings.db_url, "revision_before": before, "revision": after})
    elif before == after:
        say(f"catalog already at schema {after}: {settings.db_url}")
    else:
        say(f"catalog initialised at schema {after}: {settings.db_url}")


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Run the Alembic migrations up to the latest schema."""
    settings = settings_from(ctx, db=db)
    before, after = init_catalog(settings)
    if json_out:
        emit_json({"revision_before": before, "revision": after})
    else:
        say(f"schema {before or '(none)'} -> {after}")


@db_app.command("current")
def db_current(ctx: typer.Context, db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Show the catalog's schema revision and the latest one this version knows."""
    settings = settings_from(ctx, db=db)
    current, head = catalog_revision(settings)
    if json_out:
        emit_json({"current": current, "head": head, "at_head": current == head})
    else:
        note = " (head)" if current == head else f" (head is {head})"
        typer.echo(f"{current or '(not initialised)'}{note}")
