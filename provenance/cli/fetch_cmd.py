"""provenance fetch."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from provenance.cli import app
from provenance.cli.common import (
    AllowPrivateOpt,
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
from provenance.cli.output import emit_json, progress_bar, table
from provenance.config import Settings
from provenance.net import DEFAULT_MAX_BYTES
from provenance.services.fetch import FetchOptions, FetchSummary, run_fetch
from provenance.services.scale import fetch_partitioned


def _status(summary: FetchSummary, elapsed: float) -> str:
    rate = summary.done / elapsed if elapsed > 0 else 0.0
    skipped = summary.skipped_reserved + summary.skipped_unknown
    excluded = summary.skipped_blocklisted + summary.skipped_optout
    return (
        f"fetched {summary.fetched} · skipped by signal {skipped} · excluded {excluded} · "
        f"failed {summary.failed} · {rate:.1f}/s"
    )


@app.command()
def fetch(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Fetch at most N pending URLs.")
    ] = None,
    user_agent: Annotated[
        str | None,
        typer.Option(
            "--user-agent",
            help="User-Agent sent; its first word is our robots.txt token. "
            "Env: PROVENANCE_USER_AGENT.",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Requests in flight across all hosts.")
    ] = 16,
    per_host: Annotated[
        int, typer.Option("--per-host", min=1, help="Requests in flight to one host at most.")
    ] = 2,
    delay: Annotated[
        float,
        typer.Option("--delay", min=0.0, help="Seconds between request starts on one host."),
    ] = 0.0,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.01, help="Connect/read timeout in seconds (whole "
                     "request: 6x)."),
    ] = 10.0,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Largest response body accepted.")
    ] = DEFAULT_MAX_BYTES,
    allow_private: AllowPrivateOpt = False,
    partition: PartitionOpt = None,
    engine: EngineOpt = None,
    partitions: PartitionsOpt = None,
    engine_address: EngineAddressOpt = None,
    db: DbOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Download pending URLs politely: blocklists and opt-outs first, then robots.txt, ai.txt
    and TDMRep (cached per host); reserved URLs are never requested. Response headers are
    recorded as signals, the bytes are catalogued like ingest and kept in the store."""
    settings = settings_from(
        ctx, db=db, store=store, allow_private=allow_private, user_agent=user_agent
    )
    choice, part = engine_from(engine, partitions, engine_address, partition)
    options = FetchOptions(
        limit=limit,
        concurrency=concurrency,
        per_host=per_host,
        delay=delay,
        timeout=timeout,
        max_bytes=max_bytes,
        partition=part,
    )
    command = " ".join(sys.argv[1:]) or "fetch"
    if choice.distributed:
        with partitions_bar("fetch") as done:
            summary = fetch_partitioned(settings, options, choice, done, command)
    else:
        summary = _fetch_local(settings, options, command)
    _report(summary, json_out)


def _fetch_local(settings: Settings, options: FetchOptions, command: str) -> FetchSummary:
    with progress_bar("fetch", "{task.description}") as bar:
        task = bar.add_task("", total=None)

        def show(summary: FetchSummary) -> None:
            elapsed = bar.tasks[task].elapsed or 0.0
            bar.update(
                task,
                completed=summary.done,
                total=summary.planned,
                description=_status(summary, elapsed),
            )

        summary = run_fetch(settings, options, progress=show, command=command)
    return summary


def _report(summary: FetchSummary, json_out: bool) -> None:
    if json_out:
        emit_json(summary.to_json())
        return
    table(
        "fetch",
        ["run", "fetched", "skipped (reserved)", "skipped (unknown)", "blocklisted",
         "opted out", "failed", "still pending"],
        [[
            summary.run_id, summary.fetched, summary.skipped_reserved, summary.skipped_unknown,
            summary.skipped_blocklisted, summary.skipped_optout, summary.failed, summary.pending,
        ]],
    )
