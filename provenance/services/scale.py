"""Heavy commands over N partitions on a distributed engine, with the local run's result.

Each `*_partitioned` function runs the service function that `--partition I/N` runs, once per
partition, through `provenance.engine`, and merges the per-partition results into the same
summary type the single-process run returns. Merges are deterministic: sums, and lists put
back in the order the single-process run would have produced them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from provenance import audit as scan
from provenance.config import Settings
from provenance.db.partitioning import PartitionReport
from provenance.db.partitioning import partition_catalog as convert_catalog
from provenance.engine import EngineChoice, run_partitions
from provenance.policy import Policy, default_policy_path, load_policy
from provenance.services.audit import AuditReport, run_audit
from provenance.services.catalog import open_catalog
from provenance.services.export import ExportOptions, prepare_export, run_export
from provenance.services.export_finish import ExportResult
from provenance.services.fetch import FetchOptions, FetchSummary, run_fetch
from provenance.services.ingest import IngestOptions, IngestSummary, run_ingest
from provenance.services.ingest_stages import MAX_BAD_ITEMS_LISTED
from provenance.services.policy import CatalogEvaluation, evaluate_catalog

OnDone = Callable[[int, int], None]


def ingest_partitioned(
    settings: Settings,
    options: IngestOptions,
    choice: EngineChoice,
    on_done: OnDone | None = None,
    command: str | None = None,
) -> IngestSummary:
    """`ingest` as N tasks; one hashing process per task unless --workers says otherwise
    (a task holds one CPU of the cluster)."""
    task_options = dataclasses.replace(
        options, workers=options.workers or 1, sources=[s.resolve() for s in options.sources]
    )

    def one(part: tuple[int, int]) -> IngestSummary:
        return run_ingest(settings, dataclasses.replace(task_options, partition=part),
                          command=command)

    return merge_ingest(run_partitions(choice, one, on_done))


def merge_ingest(parts: Sequence[IngestSummary]) -> IngestSummary:
    """Counts summed; the run id is the first partition's (each partition records its own
    run); bad items ordered by origin."""
    merged = IngestSummary(run_id=min((p.run_id for p in parts), default=0))
    bad_items: list[dict[str, str]] = []
    for part in parts:
        merged.images_new += part.images_new
        merged.sightings_new += part.sightings_new
        merged.duplicates += part.duplicates
        merged.pending_fetch += part.pending_fetch
        merged.bad += part.bad
        bad_items.extend(part.bad_items)
    bad_items.sort(key=lambda item: (item["origin"], item["reason"]))
    merged.bad_items = bad_items[:MAX_BAD_ITEMS_LISTED]
    return merged


def fetch_partitioned(
    settings: Settings,
    options: FetchOptions,
    choice: EngineChoice,
    on_done: OnDone | None = None,
    command: str = "fetch",
) -> FetchSummary:
    """`fetch` as N tasks, one per host-bucket range (`--limit` applies per partition)."""

    def one(part: tuple[int, int]) -> FetchSummary:
        return run_fetch(settings, dataclasses.replace(options, partition=part), command=command)

    parts = run_partitions(choice, one, on_done)
    merged = FetchSummary(run_id=min((p.run_id for p in parts if p.run_id), default=None))
    for part in parts:
        for name in ("fetched", "skipped_reserved", "skipped_unknown", "skipped_blocklisted",
                     "skipped_optout", "failed", "retries", "pending", "planned", "bytes"):
            setattr(merged, name, getattr(merged, name) + getattr(part, name))
        merged.hosts |= part.hosts
    return merged


def policy_partitioned(
    settings: Settings,
    policy: Policy,
    now: datetime,
    as_of: datetime | None,
    choice: EngineChoice,
    on_done: OnDone | None = None,
) -> CatalogEvaluation:
    """`policy eval` as N tasks over sha256 ranges; the same document as one process."""

    def one(part: tuple[int, int]) -> CatalogEvaluation:
        engine = open_catalog(settings)
        try:
            return evaluate_catalog(engine, policy, now, partition=part, as_of=as_of)
        finally:
            engine.dispose()

    parts = run_partitions(choice, one, on_done)
    counts: Counter[str] = Counter()
    for part in parts:
        counts.update(part.excluded)
    first = parts[0]
    return CatalogEvaluation(
        first.policy_name,
        first.policy_sha256,
        sum(p.total for p in parts),
        sorted(k for p in parts for k in p.included),
        dict(counts),
        sum(p.excluded_total for p in parts),
        None,
        first.as_of,
    )


def audit_partitioned(
    settings: Settings,
    paths: Sequence[Path],
    policy_path: Path | None,
    choice: EngineChoice,
    on_done: OnDone | None = None,
) -> AuditReport:
    """`audit` as N tasks over the sorted shard list; violations back in shard-list order."""

    paths = [p.resolve() for p in paths]
    policy_path = policy_path.resolve() if policy_path else None

    def one(part: tuple[int, int]) -> AuditReport:
        return run_audit(settings, paths, policy_path, part)

    parts = run_partitions(choice, one, on_done)
    order = {str(file): pos for pos, (_, file) in enumerate(scan.collect_targets(paths))}
    violations = sorted(
        (v for p in parts for v in p.violations), key=lambda v: order.get(v.shard, len(order))
    )
    policy = load_policy(policy_path or default_policy_path())
    return AuditReport(
        sum(p.samples for p in parts),
        sum(p.ok for p in parts),
        tuple(violations),
        policy.name,
        policy.sha256,
        tuple(str(p.resolve()) for p in paths),
    )


def export_partitioned(
    settings: Settings,
    options: ExportOptions,
    choice: EngineChoice,
    on_done: OnDone | None = None,
) -> ExportResult:
    """`export` as: the count phase (plan and global shard numbering) in the driver, the
    shards of each partition in its task, then the manifest written by the driver last."""
    if options.dry_run:
        return run_export(settings, options)
    planned = prepare_export(settings, options)

    def one(part: tuple[int, int]) -> int:
        shard_opts = dataclasses.replace(planned, partition=part, finish=False)
        return run_export(settings, shard_opts).written

    written = sum(run_partitions(choice, one, on_done))
    final = run_export(settings, dataclasses.replace(planned, partition=None, just_planned=False))
    return dataclasses.replace(final, written=written + final.written)


def partition_catalog(settings: Settings, count: int) -> PartitionReport:
    """`db partition`: range-partition the large tables of a PostgreSQL catalog."""
    engine = open_catalog(settings)
    try:
        return convert_catalog(engine, count)
    finally:
        engine.dispose()
