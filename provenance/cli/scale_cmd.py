"""provenance db partition (PostgreSQL: range-partition the large tables)."""

from __future__ import annotations

from typing import Annotated

import typer

from provenance.cli.catalog_cmds import db_app
from provenance.cli.common import DbOpt, JsonOpt, settings_from
from provenance.cli.output import emit_json, say
from provenance.services.scale import partition_catalog


@db_app.command("partition")
def db_partition(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", help="Partitions per table (2-4096).")] = 64,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """PostgreSQL only: convert images, sightings and export_members to RANGE partitions
    (images by sha256, sightings by host bucket), keeping every row. Run it while nothing
    else writes to the catalog; see docs/scale.md."""
    report = partition_catalog(settings_from(ctx, db=db), count)
    if json_out:
        emit_json(report.to_json())
        return
    for name in report.converted:
        say(f"{name}: {report.rows[name]} rows moved into {count} range partitions")
    for name in report.already:
        say(f"{name}: already partitioned, left as it is")
    for fk in report.dropped_foreign_keys:
        say(f"dropped foreign key {fk} (PostgreSQL has no unique key on sightings.id alone now)")
