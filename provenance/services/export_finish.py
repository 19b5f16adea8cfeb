"""Finishing an export once every planned shard is committed, and the result it reports.

The describing files come first (ATTRIBUTION.md/.csv, croissant.json), then `manifest.json`,
then status 'complete'. The manifest is a function of the catalog rows alone (the completion
time is set once, by the first finisher), so any process may write it again after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from provenance.db import export_queries as q
from provenance.db.engine import transaction
from provenance.domain import utcnow
from provenance.eventlog import append_event
from provenance.export.manifest import ManifestFacts, ShardEntry, manifest_json
from provenance.services.export_shards import write_descriptions, write_manifest


@dataclass(frozen=True)
class ShardInfo:
    path: str
    samples: int
    sha256: str | None
    bytes: int | None = None


@dataclass(frozen=True)
class ExportResult:
    export_id: int | None
    out: str
    shards: list[ShardInfo]
    included: int
    excluded: dict[str, int]
    status: str  # complete | writing | dry-run
    written: int = 0

    def to_json(self) -> dict[str, Any]:
        """Exactly the CLI.md `export --json` shape (status and shards written this run are
        in the summary on stderr, and in `exports show`)."""
        return {
            "export_id": self.export_id,
            "out": self.out,
            "shards": [
                {"path": s.path, "samples": s.samples, "sha256": s.sha256} for s in self.shards
            ],
            "included": self.included,
            "excluded": dict(sorted(self.excluded.items())),
        }


def result_of(export: q.ExportRow, shards: dict[int, q.ShardRow], written: int) -> ExportResult:
    """The report of an export as the catalog records it."""
    out = Path(export.out_dir)
    return ExportResult(
        export.id,
        export.out_dir,
        [
            ShardInfo(str(out / s.path), s.samples, s.sha256, s.bytes)
            for _, s in sorted(shards.items())
        ],
        export.included or 0,
        export.excluded or {},
        export.status,
        written,
    )


def finish_export(
    engine: Engine, export_id: int, members: Sequence[q.MemberRow], written: int
) -> ExportResult:
    """If every planned shard is committed, write the describing files and the manifest and
    mark the export complete; otherwise report it as still 'writing'."""
    with engine.connect() as conn:
        export = q.get_export(conn, export_id)
        shards = q.shards_of(conn, export_id)
    planned = {m.shard_index for m in members}
    out = Path(export.out_dir)
    manifest_there = (out / "manifest.json").exists()
    if planned - set(shards) or (export.status == "complete" and manifest_there):
        return result_of(export, shards, written)
    ordered = [s for _, s in sorted(shards.items())]
    files = write_descriptions(engine, out, export, ordered, [m.image_sha256 for m in members])
    with transaction(engine) as conn:
        q.mark_completing(conn, export_id, utcnow())
        export = q.get_export(conn, export_id)
    assert export.completed_at is not None  # set just above, or by an earlier finisher
    facts = ManifestFacts(
        export_id=export.id,
        name=export.name,
        parent_export_id=export.parent_export_id,
        created_at=export.created_at,
        completed_at=export.completed_at,
        policy_name=export.policy_name,
        policy_sha256=export.policy_sha256,
        policy_text=export.policy_text,
        shard_size=export.shard_size,
        shard_bytes=export.shard_bytes,
        included=export.included or 0,
        excluded=export.excluded or {},
        total_bytes=export.total_bytes or 0,
        shards=[ShardEntry(s.shard_index, s.path, s.samples, s.bytes, s.sha256) for s in ordered],
        files=files,
    )
    digest = write_manifest(out, manifest_json(facts))
    with transaction(engine) as conn:
        q.mark_complete(conn, export_id, digest)
        export = q.get_export(conn, export_id)
        append_event(conn, "export", {
            "export_id": export.id, "name": export.name, "out_dir": export.out_dir,
            "parent_export_id": export.parent_export_id, "policy": export.policy_name,
            "policy_sha256": export.policy_sha256, "included": export.included,
            "excluded": dict(export.excluded or {}), "shards": len(ordered),
            "manifest_sha256": digest}, utcnow())
    return result_of(export, shards, written)
