"""`provenance show KEY`: everything known about one image."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from provenance.config import Settings
from provenance.db import show_queries as q
from provenance.db.signal_store import history
from provenance.domain import Scope, iso
from provenance.services.catalog import open_catalog


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return iso(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def show_image(settings: Settings, key: str) -> dict[str, Any]:
    """The `show --json` document (CLI.md): image, sightings, signals with evidence,
    opt-outs and exports."""
    engine = open_catalog(settings)
    try:
        with Session(engine) as conn:
            sha = q.resolve_key(conn, key)
            doc = q.image_row(conn, sha)
            sightings = q.sightings_of(conn, sha)
            doc["sightings"] = [
                {
                    "url": s.url,
                    "domain": s.domain,
                    "host": s.host,
                    "source_name": s.source_name,
                    "origin": s.origin,
                    "origin_kind": s.origin_kind,
                    "status": s.status,
                    "error": s.error,
                    "license_raw": s.license_raw,
                    "license_spdx": s.license_spdx,
                    "creator": s.creator,
                    "title": s.title,
                    "caption": s.caption,
                    "tags": json.loads(s.tags) if s.tags else [],
                    "claimed_sha256": s.claimed_sha256,
                    "seen_at": s.seen_at,
                    "fetched_at": s.fetched_at,
                }
                for s in sightings
            ]
            observations = list(history(conn.connection(), Scope.IMAGE, sha))
            for url in sorted({s.url for s in sightings if s.url}):
                observations.extend(history(conn.connection(), Scope.URL, url))
            for host in sorted({s.host for s in sightings if s.host}):
                observations.extend(history(conn.connection(), Scope.HOST, host))
            doc["signals"] = [
                {
                    "kind": str(o.signal.kind),
                    "status": str(o.signal.status),
                    "scope": str(o.observation.scope),
                    "subject": o.observation.subject,
                    "observed_at": o.observed_at,
                    "expires_at": o.expires_at,
                    "source": o.signal.source,
                    "detail": o.signal.detail,
                    "tokens": {k: str(v) for k, v in sorted(o.signal.tokens.items())},
                    "evidence_sha256": o.evidence_sha256,
                    "evidence": o.evidence_excerpt,
                }
                for o in observations
            ]
            doc["optouts"] = q.optouts_of(conn, sha, [s.id for s in sightings])
            doc["exports"] = q.exports_of(conn, sha)
    finally:
        engine.dispose()
    result: dict[str, Any] = _jsonable(doc)
    return result
