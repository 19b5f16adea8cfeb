"""log verify / log show: the append-only, hash-chained event log."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say, table
from provenance.domain import iso
from provenance.services.eventlog import show_log, verify_log

log_app = typer.Typer(help="The append-only, hash-chained event log.", no_args_is_help=True)
app.add_typer(log_app, name="log")


@log_app.command("verify")
def log_verify(ctx: typer.Context, db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Check that no event was edited, deleted or reordered; exit 1 and say where if so."""
    result = verify_log(settings_from(ctx, db=db))
    if json_out:
        emit_json(result.to_json())
    elif result.ok:
        head = f"; head seq {result.head_seq} hash {result.head_hash}" if result.head_seq else ""
        say(f"event log intact: {result.events} events{head}")
    else:
        say(f"event log BROKEN: {len(result.problems)} problem(s) in {result.events} events")
        for problem in result.problems:
            say(f"  seq {problem.seq}: {problem.problem}")
    if not result.ok:
        raise typer.Exit(1)


@log_app.command("show")
def log_show(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many of the latest events.")] = 20,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only events of this kind.", show_default=False)
    ] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The latest events, oldest first."""
    events = show_log(settings_from(ctx, db=db), limit, kind)
    if json_out:
        emit_json({"events": [e.to_json() for e in events]})
        return
    rows = [
        (e.seq, iso(e.occurred_at), e.kind, json.dumps(dict(e.payload), sort_keys=True)[:120],
         e.hash[:16])
        for e in events
    ]
    table("event log", ["seq", "occurred_at", "kind", "payload", "hash"], rows)
