"""The catalog schema: SQLAlchemy 2 typed models. Alembic revisions in provenance/migrations
mirror these exactly (a test runs `alembic check`).

Natural keys everywhere it matters for scale-out: images by sha256, sightings by a key derived
from their content, signals append-only (history is never overwritten).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


# --------------------------------------------------------------------------- catalog (0001)


class IngestRun(Base):
    """One invocation of ingest or fetch: who, when, what, and the resulting counts."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # ingest | fetch
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed | interrupted
    operator: Mapped[str | None] = mapped_column(String(200))
    hostname: Mapped[str | None] = mapped_column(String(200))
    command: Mapped[str | None] = mapped_column(Text)
    sources: Mapped[str | None] = mapped_column(Text)  # JSON list of inputs
    source_name: Mapped[str | None] = mapped_column(String(200))
    partition: Mapped[str | None] = mapped_column(String(32))  # "I/N" when partitioned
    counts: Mapped[str | None] = mapped_column(Text)  # JSON summary


class Image(Base):
    """One image, identified by the sha256 of its bytes."""

    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    byte_size: Mapped[int] = mapped_column(BigInteger)
    decode_ok: Mapped[bool] = mapped_column(Boolean)
    phash: Mapped[str | None] = mapped_column(String(16), index=True)
    phash_alg: Mapped[str | None] = mapped_column(String(40))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    format: Mapped[str | None] = mapped_column(String(16))
    decode_error: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[str | None] = mapped_column(Text)  # JSON: EXIF/XMP creator, copyright, ...
    first_seen_at: Mapped[datetime]
    first_run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))


class Sighting(Base):
    """One place an image or URL was seen: a file, a sidecar, a manifest row, a tar member.

    `sighting_key` is derived from content (source name, origin, URL, and the bytes' hash when
    bytes were present), so re-ingesting the same input is a no-op and partitioned runs agree.
    Rows without bytes are `pending` until fetched. Bad items are kept with status `bad` and
    the reason in `error`.
    """

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sighting_key: Mapped[str] = mapped_column(String(64), unique=True)
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("images.sha256"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # ok | pending | bad | skipped | failed
    error: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    host_bucket: Mapped[int | None] = mapped_column(Integer)
    source_name: Mapped[str | None] = mapped_column(String(200))
    origin_kind: Mapped[str] = mapped_column(String(16))  # file | manifest-row | tar-member
    origin: Mapped[str] = mapped_column(Text)
    license_raw: Mapped[str | None] = mapped_column(Text)
    license_spdx: Mapped[str | None] = mapped_column(String(64))
    creator: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    caption: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[str | None] = mapped_column(Text)  # JSON list
    claimed_sha256: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[str | None] = mapped_column(Text)  # JSON: other sidecar/manifest fields
    local_path: Mapped[str | None] = mapped_column(Text)  # where bytes can be read again
    local_offset: Mapped[int | None] = mapped_column(BigInteger)  # tar member data offset
    local_length: Mapped[int | None] = mapped_column(BigInteger)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    seen_at: Mapped[datetime]
    fetched_at: Mapped[datetime | None]

    __table_args__ = (
        # No index on url: URL-scope joins go through signals' own index and opt-out
        # matching through `domain`; an index on long URL text would double insert cost.
        Index("ix_sightings_host_bucket_status", "host_bucket", "status"),
    )


# --------------------------------------------------------------------------- signals (0002)


class EvidenceBlob(Base):
    """Raw bodies (robots.txt, tdmrep.json, license XML) kept once by content hash."""

    __tablename__ = "evidence_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime]


class SignalObservation(Base):
    """One observation of one signal kind about a host, URL or image. Append-only.

    `tokens_reserved` / `tokens_unknown` / `tokens_allowed` are comma-framed lower-case token
    lists (",gptbot,ccbot,") so a policy can ask about any token set in portable SQL; a token in
    none of them was not evaluated (unknown). Token-less signals leave all three NULL.
    """

    __tablename__ = "signals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))  # host | url | image
    subject: Mapped[str] = mapped_column(Text)  # host name, URL or sha256
    kind: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(10))
    tokens_reserved: Mapped[str | None] = mapped_column(Text)
    tokens_unknown: Mapped[str | None] = mapped_column(Text)
    tokens_allowed: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)  # JSON: per-token verdicts, extra facts
    source: Mapped[str | None] = mapped_column(Text)
    evidence_sha256: Mapped[str | None] = mapped_column(ForeignKey("evidence_blobs.sha256"))
    evidence_excerpt: Mapped[str | None] = mapped_column(Text)
    observed_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    # The scale-out partition key of the subject (keys.subject_bucket): its host bucket for
    # host and URL subjects, the first 16 bits of the sha256 for images; NULL for a URL that
    # names no host we fetch. `db partition` ranges the table on it.
    bucket: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_signals_subject_kind", "scope", "subject", "kind", "observed_at"),
        Index("ix_signals_kind_status", "kind", "status"),
    )


class SignalCurrent(Base):
    """The newest observation of each (scope, subject, kind), by observed_at then id: what a
    present-time policy evaluation reads instead of searching each key's history.

    Kept in step by database triggers on `signals` (revisions 0002, 0003), so every writer (batched
    inserts, bulk loads, concurrent transactions) updates it in the same transaction; the
    upsert only replaces a row with a newer observation. Time-travel (`as_of`) queries still
    read `signals`. Without rowid on SQLite: the key is the table.
    """

    __tablename__ = "signals_current"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"))
    observed_at: Mapped[datetime]
    # Copies of the row `signal_id` names (revision 0003), so the policy query ranks the
    # observation without a second seek into `signals`. `invalid_mark`: `data` holds the C2PA
    # invalid-manifest marker.
    status: Mapped[str] = mapped_column(String(10))
    tokens_reserved: Mapped[str | None] = mapped_column(Text)
    tokens_unknown: Mapped[str | None] = mapped_column(Text)
    tokens_allowed: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    invalid_mark: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = ({"sqlite_with_rowid": False},)


class FetchAttempt(Base):
    """Every attempt to fetch a sighting's URL, successful or not."""

    __tablename__ = "fetch_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sighting_id: Mapped[int] = mapped_column(ForeignKey("sightings.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("ingest_runs.id"))
    url: Mapped[str] = mapped_column(Text)
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(24))  # fetched | skipped-reserved | failed ...
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    elapsed_ms: Mapped[int | None] = mapped_column(Integer)
    user_agent: Mapped[str | None] = mapped_column(Text)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    host_bucket: Mapped[int | None] = mapped_column(Integer)  # the sighting's: fetch partitions


# --------------------------------------------------------------------------- opt-outs (0003)


class OptOutRequest(Base):
    """A request by a rights holder. Stored in one transaction before it is acknowledged."""

    __tablename__ = "optout_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str | None] = mapped_column(String(400), unique=True)
    requester: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    scope_kind: Mapped[str] = mapped_column(
        String(16)
    )  # url|url-prefix|domain|sha256|image|creator
    scope_value: Mapped[str] = mapped_column(Text)  # normalized value matched against
    # Registrable domain of url/url-prefix/domain scopes: joins to sightings.domain (indexed).
    scope_domain: Mapped[str | None] = mapped_column(String(255), index=True)
    phash: Mapped[str | None] = mapped_column(String(16))
    # Image scope: pHashes of light crops of the request image, comma-separated (crop tolerance).
    phash_probes: Mapped[str | None] = mapped_column(Text)
    max_distance: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))  # active | withdrawn
    withdrawn_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_optout_requests_scope", "scope_kind", "scope_value"),)


class OptOutMatch(Base):
    """What a request matched: an image (by hash or perceptually) or a sighting (by URL...)."""

    __tablename__ = "optout_matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("optout_requests.id"), index=True)
    image_sha256: Mapped[str | None] = mapped_column(ForeignKey("images.sha256"), index=True)
    sighting_id: Mapped[int | None] = mapped_column(ForeignKey("sightings.id"))
    how: Mapped[str] = mapped_column(String(16))
    distance: Mapped[int | None] = mapped_column(Integer)
    matched_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("request_id", "image_sha256", "sighting_id", name="uq_optout_match"),
    )


# --------------------------------------------------------------------------- exports (0004)


class Export(Base):
    """One export: the policy used, where it went, and what it contained."""

    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12))  # writing | complete
    out_dir: Mapped[str] = mapped_column(Text)
    policy_name: Mapped[str] = mapped_column(String(200))
    policy_sha256: Mapped[str] = mapped_column(String(64))
    policy_text: Mapped[str] = mapped_column(Text)
    shard_size: Mapped[int | None] = mapped_column(Integer)
    shard_bytes: Mapped[int | None] = mapped_column(BigInteger)
    included: Mapped[int | None] = mapped_column(Integer)
    excluded: Mapped[str | None] = mapped_column(Text)  # JSON {reason: count}
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    parent_export_id: Mapped[int | None] = mapped_column(ForeignKey("exports.id"))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class ExportShard(Base):
    """A committed shard: a re-run that would write different bytes is a determinism bug."""

    __tablename__ = "export_shards"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id"), primary_key=True)
    shard_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    samples: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    committed_at: Mapped[datetime]


class ExportMember(Base):
    """Which image went into which shard of which export (the lineage)."""

    __tablename__ = "export_members"

    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id"), primary_key=True)
    image_sha256: Mapped[str] = mapped_column(ForeignKey("images.sha256"), primary_key=True)
    shard_index: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_export_members_image", "image_sha256"),)


# --------------------------------------------------------------------------- log, lists (0005)


class Event(Base):
    """Append-only, hash-chained event log. `hash` = sha256(prev_hash + canonical payload)."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Blocklist(Base):
    """A named, versioned list of domains / URL prefixes never fetched and never exported."""

    __tablename__ = "blocklists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(Text)
    imported_at: Mapped[datetime]
    entries: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("name", "version", name="uq_blocklists_name_version"),)


class BlocklistEntry(Base):
    __tablename__ = "blocklist_entries"

    list_id: Mapped[int] = mapped_column(ForeignKey("blocklists.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)  # domain | url-prefix
    value: Mapped[str] = mapped_column(String(1000), primary_key=True)
