"""provenance audit: before training, check shards or image folders against catalog + policy."""

from __future__ import annotations

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
    engine_from,
    partitions_bar,
    settings_from,
)
from provenance.cli.output import emit_json, out, say
from provenance.services.audit import EXAMPLES_PER_REASON, AuditReport, run_audit
from provenance.services.scale import audit_partitioned


def _print_human(report: AuditReport) -> None:
    out.print(f"audited {report.samples} samples against policy {report.policy_name!r}: "
              f"{report.ok} ok, {report.samples - report.ok} with violations", markup=False)
    for reason, group in report.by_reason().items():
        out.print(f"\n{reason}: {len(group)}", markup=False)
        for v in group[:EXAMPLES_PER_REASON]:
            detail = f" ({v.detail})" if v.detail else ""
            out.print(f"  {v.shard} :: {v.key}{detail}", markup=False)
        if len(group) > EXAMPLES_PER_REASON:
            out.print(f"  ... and {len(group) - EXAMPLES_PER_REASON} more (see --json)",
                      markup=False)


@app.command()
def audit(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(
        help="WebDataset .tar shards, folders of shards, or folders of images.",
        show_default=False)],
    policy: Annotated[Path | None, typer.Option(
        "--policy", help="Policy file (default: the shipped strict policy).",
        show_default=False)] = None,
    partition: PartitionOpt = None,
    engine: EngineOpt = None,
    partitions: PartitionsOpt = None,
    engine_address: EngineAddressOpt = None,
    db: DbOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every sample: recompute its sha256, look it up, apply the policy as of now.

    Exit 1 on any unknown, opted-out, not-permitted, hash-mismatched, unreadable or hostile
    sample; 0 when clean."""
    choice, part = engine_from(engine, partitions, engine_address, partition)
    settings = settings_from(ctx, db=db)
    if choice.distributed:
        with partitions_bar("audit") as done:
            report = audit_partitioned(settings, paths, policy, choice, done)
    else:
        report = run_audit(settings, paths, policy, part)
    if json_out:
        emit_json(report.to_json())
    else:
        _print_human(report)
    if not report.clean:
        if not json_out:
            say(f"audit FAILED: {len(report.violations)} violation(s)")
        raise typer.Exit(1)
