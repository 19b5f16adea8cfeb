"""provenance export; exports list / show / revocations / rewrite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

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
from provenance.services.export import ExportOptions, run_export
from provenance.services.export_finish import ExportResult
from provenance.services.exports import (
    list_exports,
    revocations,
    rewrite_export,
    show_export,
)
from provenance.services.scale import export_partitioned

exports_app = typer.Typer(help="Past exports: lineage, revocations, rewrites.",
                          no_args_is_help=True)
app.add_typer(exports_app, name="exports")


class _Bar:
    """A rich progress bar on stderr (only on a terminal), fed by the export service."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=None)

    def start(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)


def _progress() -> Progress:
    return progress_bar("export", "samples")


def _report(result: ExportResult, json_out: bool) -> None:
    if json_out:
        emit_json(result.to_json())
    else:
        table(f"export {result.export_id or '(dry run)'} -> {result.out}",
              ["shard", "samples", "sha256"],
              [[Path(s.path).name, s.samples, s.sha256 or "-"] for s in result.shards])
    excluded = ", ".join(f"{k}: {v}" for k, v in sorted(result.excluded.items())) or "none"
    say(f"{result.status}: {result.included} included in {len(result.shards)} shard(s); "
        f"excluded by reason: {excluded}; shards written by this run: {result.written}")


@app.command()
def export(
    ctx: typer.Context,
    policy: Annotated[Path, typer.Option("--policy", help="Policy file (TOML).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for shards and manifest.")],
    shard_size: Annotated[int | None, typer.Option(
        "--shard-size", help="Samples per shard (default 10000 unless --shard-bytes).")] = None,
    shard_bytes: Annotated[int | None, typer.Option(
        "--shard-bytes", help="Most image bytes per shard.")] = None,
    name: Annotated[str, typer.Option("--name", help="Shard name prefix.")] = "shard",
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print what would be written; write nothing.")] = False,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the unfinished export in --out (a plain re-run does too).",
    )] = False,
    partition: PartitionOpt = None,
    engine: EngineOpt = None,
    partitions: PartitionsOpt = None,
    engine_address: EngineAddressOpt = None,
    db: DbOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write WebDataset shards of the images the policy permits, plus manifest.json,
    croissant.json and ATTRIBUTION files, and record the lineage. Deterministic and
    resumable."""
    settings = settings_from(ctx, db=db, store=store)
    choice, part = engine_from(engine, partitions, engine_address, partition)
    options = ExportOptions(policy.resolve(), out, name, shard_size, shard_bytes, dry_run, resume,
                            part)
    if choice.distributed:
        with partitions_bar("export") as done:
            result = export_partitioned(settings, options, choice, done)
    else:
        with _progress() as progress:
            result = run_export(settings, options, _Bar(progress, "export"))
    _report(result, json_out)


@exports_app.command("list")
def exports_list(ctx: typer.Context, db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Every export: id, status, policy, counts, where it went."""
    docs = list_exports(settings_from(ctx, db=db))
    if json_out:
        emit_json({"exports": docs})
        return
    table("exports", ["id", "status", "policy", "included", "parent", "created", "out"],
          [[d["export_id"], d["status"], d["policy"], d["included"], d["parent_export_id"],
            d["created_at"], d["out"]] for d in docs])


@exports_app.command("show")
def exports_show(ctx: typer.Context, export_id: Annotated[int, typer.Argument(help="Export id.")],
                 db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """One export with its policy and committed shards."""
    doc = show_export(settings_from(ctx, db=db), export_id)
    if json_out:
        emit_json(doc)
        return
    for key in ("export_id", "name", "status", "out", "policy", "policy_sha256", "included",
                "excluded", "parent_export_id", "created_at", "completed_at"):
        typer.echo(f"{key}: {doc[key]}")
    table("shards", ["index", "samples", "bytes", "sha256"],
          [[s["index"], s["samples"], s["bytes"], s["sha256"]] for s in doc["shards"]])


@exports_app.command("revocations")
def exports_revocations(
    ctx: typer.Context,
    export_id: Annotated[int, typer.Argument(help="Export id.")],
    policy: Annotated[Path | None, typer.Option(
        "--policy", help="Judge with this policy instead of the export's own.")] = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Keys in the export that the current catalog would no longer permit (opt-outs,
    license or signal changes since)."""
    doc: dict[str, Any] = revocations(settings_from(ctx, db=db), export_id, policy)
    if json_out:
        emit_json(doc)
        return
    table(f"revoked in export {export_id}", ["key", "reason", "request"],
          [[r["key"], r["reason"], r["request_id"]] for r in doc["revoked"]])
    say(f"{len(doc['revoked'])} sample(s) of export {export_id} are no longer permitted")


@exports_app.command("rewrite")
def exports_rewrite(
    ctx: typer.Context,
    export_id: Annotated[int, typer.Argument(help="Export id.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the new shards.")],
    db: DbOpt = None,
    store: StoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """New shards without the revoked samples: a new export whose parent is ID."""
    settings = settings_from(ctx, db=db, store=store)
    with _progress() as progress:
        result = rewrite_export(settings, export_id, out, _Bar(progress, "rewrite"))
    _report(result, json_out)
