"""provenance ingest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import (
    DbOpt,
    EngineAddressOpt,
    EngineOpt,
    JsonOpt,
    PartitionOpt,
    PartitionsOpt,
    StoreOpt,
    engine_from,
    partitions_bar,
    settings_from,
)
from provenance.cli.output import emit_json, progress_bar, say, table
from provenance.config import Settings
from provenance.services.ingest import IngestOptions, IngestSummary, run_ingest
from provenance.services.scale import ingest_partitioned


@app.command()
def ingest(
    ctx: typer.Context,
    sources: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders, manifests (.csv/.jsonl/.parquet), WebDataset .tar shards."
        ),
    ],
    source_name: Annotated[
        str | None,
        typer.Option(
            "--source-name",
            help="Name recorded on every sighting (default: the source's file or folder name).",
        ),
    ] = None,
    license_text: Annotated[
        str | None,
        typer.Option("--license", help="License for items that carry none of their own."),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=0, help="Hashing processes (0 = one per core).")
    ] = 0,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Largest image file or tar member accepted.")
    ] = 100 * 1024 * 1024,
    no_embedded: Annotated[
        bool,
        typer.Option(
            "--no-embedded-signals", help="Skip reading C2PA/IPTC signals (they then stay unknown)."
        ),
    ] = False,
    partition: PartitionOpt = None,
    engine: EngineOpt = None,
    partitions: PartitionsOpt = None,
    engine_address: EngineAddressOpt = None,
    db: DbOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Record images and URLs: files, folders with img2dataset sidecars, manifests and tar
    shards. Idempotent: the same input twice changes nothing; bad items are recorded with a
    reason and the run goes on."""
    settings = settings_from(ctx, db=db, store=store)
    choice, part = engine_from(engine, partitions, engine_address, partition)
    options = IngestOptions(
        sources=sources,
        source_name=source_name,
        license=license_text,
        workers=workers,
        max_bytes=max_bytes,
        partition=part,
        embedded_signals=not no_embedded,
    )
    command = " ".join(sys.argv[1:]) or "ingest"
    if choice.distributed:
        with partitions_bar("ingest") as done:
            summary = ingest_partitioned(settings, options, choice, done, command)
    else:
        summary = _ingest_local(settings, options, command)
    _report(summary, json_out)


def _ingest_local(settings: Settings, options: IngestOptions, command: str) -> IngestSummary:
    with progress_bar("ingest", "items") as bar:
        task = bar.add_task("ingest", total=None)
        summary = run_ingest(
            settings,
            options,
            progress=lambda n: bar.advance(task, n),
            command=command,
        )
    return summary


def _report(summary: IngestSummary, json_out: bool) -> None:
    if json_out:
        emit_json(summary.to_json())
        return
    table(
        "ingest",
        ["run", "new images", "new sightings", "duplicates", "pending fetch", "bad"],
        [
            [
                summary.run_id,
                summary.images_new,
                summary.sightings_new,
                summary.duplicates,
                summary.pending_fetch,
                summary.bad,
            ]
        ],
    )
    for item in summary.bad_items[:20]:
        say(f"bad: {item['origin']}: {item['reason']}")
    if summary.bad > 20:
        say(f"... and {summary.bad - 20} more bad items (see --json)")
