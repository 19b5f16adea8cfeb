"""Test helper: write catalog rows directly with Core (images, sightings, signals, opt-outs,
blocklists) so policy tests do not depend on ingest or fetch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete

from provenance.db.models import (
    Base,
    Blocklist,
    BlocklistEntry,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
    SignalObservation,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


def image(sha: str, **kw: Any) -> dict[str, Any]:
    row = {"sha256": sha, "byte_size": 100, "decode_ok": True, "phash": None, "phash_alg": None,
           "width": 512, "height": 512, "format": "JPEG", "decode_error": None, "facts": None,
           "first_seen_at": T0, "first_run_id": None}
    row.update(kw)
    return row


def sighting(sid: int, sha: str | None, **kw: Any) -> dict[str, Any]:
    row = {"id": sid, "sighting_key": f"k{sid}", "image_sha256": sha, "status": "ok",
           "error": None, "url": None, "host": None, "domain": None, "host_bucket": None,
           "source_name": None, "origin_kind": "file", "origin": f"o{sid}",
           "license_raw": None, "license_spdx": None, "creator": None, "title": None,
           "caption": None, "tags": None, "claimed_sha256": None, "extra": None,
           "local_path": None, "local_offset": None, "local_length": None, "run_id": None,
           "seen_at": T0, "fetched_at": None}
    row.update(kw)
    return row


def signal(oid: int, scope: str, subject: str, kind: str, status: str, **kw: Any) -> dict[str, Any]:
    row = {"id": oid, "scope": scope, "subject": subject, "kind": kind, "status": status,
           "tokens_reserved": None, "tokens_unknown": None, "tokens_allowed": None,
           "detail": None, "data": None, "source": None, "evidence_sha256": None,
           "evidence_excerpt": None, "observed_at": T0, "expires_at": None, "run_id": None}
    row.update(kw)
    return row


def request(rid: int, status: str = "active", **kw: Any) -> dict[str, Any]:
    row = {"id": rid, "reference": f"ref-{rid}", "requester": "someone", "contact": None,
           "received_at": T0, "recorded_at": T0, "scope_kind": "sha256", "scope_value": "x",
           "phash": None, "max_distance": None, "status": status, "withdrawn_at": None,
           "notes": None}
    row.update(kw)
    return row


def match(mid: int, rid: int, sha: str | None = None, sid: int | None = None) -> dict[str, Any]:
    return {"id": mid, "request_id": rid, "image_sha256": sha, "sighting_id": sid,
            "how": "sha256" if sha else "url", "distance": None, "matched_at": T0}


def insert(engine: Engine, *, images: Sequence[dict[str, Any]] = (),
           sightings: Sequence[dict[str, Any]] = (), signals: Sequence[dict[str, Any]] = (),
           requests: Sequence[dict[str, Any]] = (), matches: Sequence[dict[str, Any]] = (),
           blocklists: Sequence[tuple[str, str, Sequence[tuple[str, str]]]] = ()) -> None:
    """Insert rows; blocklists are (name, version, [(kind, value), ...])."""
    with engine.begin() as conn:
        for table, rows in ((Image, images), (Sighting, sightings), (SignalObservation, signals),
                            (OptOutRequest, requests), (OptOutMatch, matches)):
            if rows:
                conn.execute(table.__table__.insert(), list(rows))
        for i, (name, version, entries) in enumerate(blocklists, start=1):
            conn.execute(Blocklist.__table__.insert(), [{
                "id": i, "name": name, "version": version, "source": None, "imported_at": T0,
                "entries": len(entries)}])
            if entries:
                conn.execute(BlocklistEntry.__table__.insert(), [
                    {"list_id": i, "kind": k, "value": v} for k, v in entries])
