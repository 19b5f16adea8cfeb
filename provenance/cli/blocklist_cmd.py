"""blocklist import / list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say, table
from provenance.services import blocklist as service

blocklist_app = typer.Typer(
    help="Crawl blocklists: domains / URL prefixes that fetch never contacts and exports never "
    "include (Code of Practice, Measure 1.2(b)).",
    no_args_is_help=True,
)
app.add_typer(blocklist_app, name="blocklist")


@blocklist_app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Lines (domain or URL prefix, # comments) or CSV.")],
    name: Annotated[str, typer.Option("--name", help="The list's name, e.g. the authority.")],
    version: Annotated[str, typer.Option("--version", help="The list's version or date.")],
    source: Annotated[
        str | None,
        typer.Option("--source", help="Where the list comes from (court, authority, URL)."),
    ] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import one version of a blocklist; bad lines are reported, good ones kept."""
    result = service.import_blocklist(settings_from(ctx, db=db), file, name, version, source)
    if json_out:
        emit_json(result.to_json())
    else:
        for bad in result.bad:
            say(f"line {bad.line}: {bad.reason}: {bad.text}")
        state = "already imported" if result.already_imported else "imported"
        say(
            f"{state}: {name} {version} (list {result.list_id}): {result.domains} domain(s), "
            f"{result.url_prefixes} URL prefix(es), {len(result.bad)} bad line(s)"
        )


@blocklist_app.command("list")
def list_cmd(ctx: typer.Context, db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Every imported blocklist version, oldest first."""
    lists = service.list_blocklists(settings_from(ctx, db=db))
    if json_out:
        emit_json({"blocklists": lists})
        return
    table(
        "blocklists",
        ["id", "name", "version", "source", "imported_at", "domains", "url_prefixes"],
        [[b[k] for k in ("id", "name", "version", "source", "imported_at", "domains",
                         "url_prefixes")] for b in lists],
    )
