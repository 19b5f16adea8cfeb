"""Past exports: list, show, revocations (what the catalog would no longer permit), and
rewrite (new shards without the revoked samples, with lineage to the old export)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from provenance.config import Settings
from provenance.db import export_queries as q
from provenance.domain import iso, utcnow
from provenance.errors import BadInput
from provenance.policy import Policy, load_policy, parse_policy
from provenance.policy.model import OPTED_OUT
from provenance.services.catalog import open_catalog
from provenance.services.export import (
    ProgressSink,
    create_planned_export,
    dir_lock,
    plan_keys,
    shard_jobs,
    write_slice,
)
from provenance.services.export_finish import ExportResult, finish_export
from provenance.services.policy import decide_keys
from provenance.store import ContentStore

NOT_IN_CATALOG = "not-in-catalog"


def export_json(export: q.ExportRow, shards: dict[int, q.ShardRow] | None = None) -> dict[str, Any]:
    """One export as `exports list/show --json` print it."""
    doc: dict[str, Any] = {
        "export_id": export.id,
        "name": export.name,
        "status": export.status,
        "out": export.out_dir,
        "policy": export.policy_name,
        "policy_sha256": export.policy_sha256,
        "included": export.included,
        "excluded": export.excluded or {},
        "total_bytes": export.total_bytes,
        "parent_export_id": export.parent_export_id,
        "created_at": iso(export.created_at),
        "completed_at": iso(export.completed_at),
        "manifest_sha256": export.manifest_sha256,
    }
    if shards is not None:
        doc["shards"] = [
            {
                "index": s.shard_index,
                "path": str(Path(export.out_dir) / s.path),
                "samples": s.samples,
                "bytes": s.bytes,
                "sha256": s.sha256,
                "committed_at": iso(s.committed_at),
            }
            for _, s in sorted(shards.items())
        ]
    return doc


def list_exports(settings: Settings) -> list[dict[str, Any]]:
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            return [export_json(e) for e in q.list_exports(conn)]
    finally:
        engine.dispose()


def show_export(settings: Settings, export_id: int) -> dict[str, Any]:
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            export = q.get_export(conn, export_id)
            doc = export_json(export, q.shards_of(conn, export_id))
            doc["policy_text"] = export.policy_text
            return doc
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Revoked:
    key: str
    reason: str
    request_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "reason": self.reason, "request_id": self.request_id}


def export_policy(export: q.ExportRow) -> Policy:
    """The policy an export was made with, from the text recorded with it."""
    return parse_policy(
        export.policy_text, f"policy of export {export.id}", sha256=export.policy_sha256
    )


def revoked_keys(engine: Engine, export: q.ExportRow, policy: Policy) -> list[Revoked]:
    """Members of the export that the catalog, as of now, would no longer permit."""
    with engine.connect() as conn:
        keys = sorted(m.image_sha256 for m in q.members_of(conn, export.id))
    decisions = decide_keys(engine, policy, keys, utcnow())
    revoked: list[Revoked] = []
    for key in keys:
        decision = decisions.get(key)
        if decision is None:
            revoked.append(Revoked(key, NOT_IN_CATALOG, None))
        elif not decision.include:
            codes = decision.codes
            reason = OPTED_OUT if OPTED_OUT in codes else codes[0]
            requests = decision.optout_request_ids
            revoked.append(Revoked(key, reason, min(requests) if requests else None))
    return revoked


def revocations(
    settings: Settings, export_id: int, policy_path: Path | None = None
) -> dict[str, Any]:
    """`exports revocations ID --json`: {"export_id", "revoked": [{key, reason, request_id}]}."""
    policy = load_policy(policy_path) if policy_path is not None else None
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            export = q.get_export(conn, export_id)
        found = revoked_keys(engine, export, policy or export_policy(export))
        return {"export_id": export_id, "revoked": [r.to_json() for r in found]}
    finally:
        engine.dispose()


def rewrite_export(
    settings: Settings, export_id: int, out_dir: Path, progress: ProgressSink | None = None
) -> ExportResult:
    """New shards of an export without its revoked samples: a new export whose parent is
    `export_id`, made with the same policy text and shard limits. Re-running continues it."""
    engine = open_catalog(settings)
    store = ContentStore(settings.store_dir)
    out = out_dir.resolve()
    try:
        with engine.connect() as conn:
            old = q.get_export(conn, export_id)
        if out == Path(old.out_dir):
            raise BadInput("exports rewrite needs a new --out; the old shards stay as they are")
        out.mkdir(parents=True, exist_ok=True)
        policy = export_policy(old)
        with dir_lock(out):
            new, resumed = _open_rewrite(engine, store, old, policy, out)
        with engine.connect() as conn:
            members = q.members_of(conn, new.id)
        jobs = shard_jobs(members, new.name, None)
        written = write_slice(engine, store, new, jobs, policy, resumed, progress)
        with dir_lock(out):
            return finish_export(engine, new.id, members, written)
    finally:
        engine.dispose()


def _open_rewrite(
    engine: Engine, store: ContentStore, old: q.ExportRow, policy: Policy, out: Path
) -> tuple[q.ExportRow, bool]:
    with engine.connect() as conn:
        existing = q.latest_export_in(conn, str(out), old.name)
    if existing is not None:
        if existing.parent_export_id != old.id:
            raise BadInput(f"{out} already holds export {existing.id}; use another --out")
        return existing, True
    revoked = revoked_keys(engine, old, policy)
    gone = {r.key for r in revoked}
    with engine.connect() as conn:
        keep = sorted(
            m.image_sha256 for m in q.members_of(conn, old.id) if m.image_sha256 not in gone
        )
    excluded = dict(Counter(f"revoked:{r.reason}" for r in revoked))
    plan = plan_keys(engine, store, keep, excluded, old.shard_size, old.shard_bytes)
    values = {
        "name": old.name,
        "status": "writing",
        "out_dir": str(out),
        "policy_name": old.policy_name,
        "policy_sha256": old.policy_sha256,
        "policy_text": old.policy_text,
        "shard_size": old.shard_size,
        "shard_bytes": old.shard_bytes,
        "parent_export_id": old.id,
        "created_at": utcnow(),
    }
    new_id = create_planned_export(engine, values, plan)
    with engine.connect() as conn:
        return q.get_export(conn, new_id), False
