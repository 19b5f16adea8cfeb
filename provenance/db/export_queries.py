"""Reads and writes of the export lineage (exports, export_shards, export_members) and the
catalog facts an export needs per sample. Set-based, chunked IN lists, explicit ORDER BY."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from provenance.db.engine import insert_ignore
from provenance.db.models import Base
from provenance.db.signal_store import StoredObservation, latest_observations
from provenance.domain import Scope, SignalKind
from provenance.errors import BadInput, DeterminismError

IMAGES = Base.metadata.tables["images"]
SIGHTINGS = Base.metadata.tables["sightings"]
EXPORTS = Base.metadata.tables["exports"]
SHARDS = Base.metadata.tables["export_shards"]
MEMBERS = Base.metadata.tables["export_members"]
_CHUNK = 500  # well under every backend's bound-parameter limit


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


@dataclass(frozen=True)
class SightingFacts:
    """What one sighting says about an image: where it was seen, under which terms."""

    sighting_key: str
    url: str | None
    host: str | None
    source_name: str | None
    license_raw: str | None
    license_spdx: str | None
    creator: str | None
    title: str | None
    caption: str | None
    local_path: str | None
    local_offset: int | None
    local_length: int | None


@dataclass(frozen=True)
class ImageRow:
    sha256: str
    byte_size: int
    format: str | None


@dataclass(frozen=True)
class ExportRow:
    id: int
    name: str
    status: str
    out_dir: str
    policy_name: str
    policy_sha256: str
    policy_text: str
    shard_size: int | None
    shard_bytes: int | None
    included: int | None
    excluded: dict[str, int] | None
    total_bytes: int | None
    manifest_sha256: str | None
    parent_export_id: int | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class ShardRow:
    shard_index: int
    path: str
    samples: int
    bytes: int
    sha256: str
    committed_at: datetime


@dataclass(frozen=True)
class MemberRow:
    image_sha256: str
    shard_index: int
    position: int


# --------------------------------------------------------------------------- catalog facts


def image_rows(conn: Connection, keys: Sequence[str]) -> dict[str, ImageRow]:
    """Size and format of each known image among `keys`."""
    found: dict[str, ImageRow] = {}
    for chunk in _chunks(keys):
        stmt = select(IMAGES.c.sha256, IMAGES.c.byte_size, IMAGES.c.format).where(
            IMAGES.c.sha256.in_(chunk)
        )
        for row in conn.execute(stmt):
            found[row.sha256] = ImageRow(row.sha256, row.byte_size, row.format)
    return found


def sightings_of(conn: Connection, keys: Sequence[str]) -> dict[str, list[SightingFacts]]:
    """Every sighting of each image, ordered by the content-derived sighting key (so the
    order, and hence which sighting is 'primary', does not depend on ingest order)."""
    found: dict[str, list[SightingFacts]] = {}
    cols = [getattr(SIGHTINGS.c, f) for f in SightingFacts.__dataclass_fields__]
    for chunk in _chunks(keys):
        stmt = (
            select(SIGHTINGS.c.image_sha256, *cols)
            .where(SIGHTINGS.c.image_sha256.in_(chunk), SIGHTINGS.c.status != "bad")
            .order_by(SIGHTINGS.c.image_sha256, SIGHTINGS.c.sighting_key)
        )
        # Columns come in field order: positional construction, no per-row mapping.
        for key, *values in conn.execute(stmt):
            found.setdefault(key, []).append(SightingFacts(*values))
    return found


def latest_signals(
    conn: Connection, keys: Sequence[str], urls: Iterable[str], hosts: Iterable[str]
) -> dict[tuple[Scope, str, SignalKind], StoredObservation]:
    """The newest observation per subject and kind, for images, their URLs and their hosts."""
    found: dict[tuple[Scope, str, SignalKind], StoredObservation] = {}
    for scope, subjects in ((Scope.IMAGE, keys), (Scope.URL, urls), (Scope.HOST, hosts)):
        for (subject, kind), stored in latest_observations(conn, scope, subjects).items():
            found[(scope, subject, kind)] = stored
    return found


# --------------------------------------------------------------------------- exports


def _export_row(row: Any) -> ExportRow:
    values = dict(row._mapping)
    values["excluded"] = json.loads(values["excluded"]) if values["excluded"] else None
    return ExportRow(**values)


def create_export(conn: Connection, values: dict[str, Any]) -> int:
    """Insert an export row (status 'writing'); returns its id."""
    result = conn.execute(EXPORTS.insert().values(**values).returning(EXPORTS.c.id))
    return int(result.scalar_one())


def get_export(conn: Connection, export_id: int) -> ExportRow:
    """One export, or BadInput naming the id."""
    row = conn.execute(select(EXPORTS).where(EXPORTS.c.id == export_id)).first()
    if row is None:
        raise BadInput(f"no export with id {export_id}; see `provenance exports list`")
    return _export_row(row)


def list_exports(conn: Connection) -> list[ExportRow]:
    return [_export_row(r) for r in conn.execute(select(EXPORTS).order_by(EXPORTS.c.id))]


def latest_export_in(conn: Connection, out_dir: str, name: str) -> ExportRow | None:
    """The newest export written to `out_dir` under `name`, if any."""
    stmt = (
        select(EXPORTS)
        .where(EXPORTS.c.out_dir == out_dir, EXPORTS.c.name == name)
        .order_by(EXPORTS.c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    return _export_row(row) if row is not None else None


def record_plan(
    conn: Connection,
    export_id: int,
    members: Sequence[MemberRow],
    included: int,
    excluded: dict[str, int],
    total_bytes: int,
) -> None:
    """Store the export's plan (which image at which shard and position) and its counts."""
    rows = [
        {"export_id": export_id, "image_sha256": m.image_sha256,
         "shard_index": m.shard_index, "position": m.position}
        for m in members
    ]
    for start in range(0, len(rows), 5000):
        insert_ignore(conn, MEMBERS, rows[start : start + 5000],
                      index=["export_id", "image_sha256"])
    conn.execute(
        update(EXPORTS)
        .where(EXPORTS.c.id == export_id)
        .values(included=included, excluded=json.dumps(excluded, sort_keys=True),
                total_bytes=total_bytes)
    )


def members_of(conn: Connection, export_id: int) -> list[MemberRow]:
    """The export's members in shard order."""
    stmt = (
        select(MEMBERS.c.image_sha256, MEMBERS.c.shard_index, MEMBERS.c.position)
        .where(MEMBERS.c.export_id == export_id)
        .order_by(MEMBERS.c.shard_index, MEMBERS.c.position)
    )
    return [MemberRow(r.image_sha256, r.shard_index, r.position) for r in conn.execute(stmt)]


def shards_of(conn: Connection, export_id: int) -> dict[int, ShardRow]:
    """Committed shards by index."""
    stmt = select(SHARDS).where(SHARDS.c.export_id == export_id).order_by(SHARDS.c.shard_index)
    return {
        r.shard_index: ShardRow(r.shard_index, r.path, r.samples, r.bytes, r.sha256, r.committed_at)
        for r in conn.execute(stmt)
    }


def record_shard(conn: Connection, export_id: int, shard: ShardRow) -> None:
    """Record a committed shard; a different sha256 for an already committed one is a
    determinism bug and raises DeterminismError."""
    insert_ignore(
        conn,
        SHARDS,
        [{"export_id": export_id, "shard_index": shard.shard_index, "path": shard.path,
          "samples": shard.samples, "bytes": shard.bytes, "sha256": shard.sha256,
          "committed_at": shard.committed_at}],
        index=["export_id", "shard_index"],
    )
    stored = conn.execute(
        select(SHARDS.c.sha256).where(
            and_(SHARDS.c.export_id == export_id, SHARDS.c.shard_index == shard.shard_index)
        )
    ).scalar_one()
    if stored != shard.sha256:
        raise DeterminismError(
            f"shard {shard.shard_index} of export {export_id} was committed with sha256 "
            f"{stored} but was re-written as {shard.sha256}; this is a determinism bug "
            "(please report it), the committed shard is kept"
        )


def mark_completing(conn: Connection, export_id: int, now: datetime) -> None:
    """Set the completion time once (the first finisher wins), while status stays 'writing'."""
    conn.execute(
        update(EXPORTS)
        .where(EXPORTS.c.id == export_id, EXPORTS.c.completed_at.is_(None))
        .values(completed_at=now)
    )


def mark_complete(conn: Connection, export_id: int, manifest_sha256: str) -> None:
    conn.execute(
        update(EXPORTS)
        .where(EXPORTS.c.id == export_id)
        .values(status="complete", manifest_sha256=manifest_sha256)
    )


def lock_out_dir(conn: Connection, out_dir: str) -> None:
    """Serialise the creation of an export in `out_dir` across machines (PostgreSQL advisory
    lock, released at the end of the transaction). SQLite serialises writers by itself, and
    processes on one machine also hold a lock file in the directory."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.sha256(out_dir.encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    conn.execute(select(func.pg_advisory_xact_lock(key)))
