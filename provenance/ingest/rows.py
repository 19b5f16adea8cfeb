"""Sighting rows from analyzed inputs: keys, URL parts, license ids, status. Pure, no I/O.

Sighting keys are derived from content so that re-ingesting, and partitioned runs, agree:
a file or tar member is keyed by where it is and the bytes' hash; a manifest row by what it
says (URL, caption, license, creator, title, claimed hash), not by its row number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from provenance.domain import ImageFacts
from provenance.ingest.keys import host_bucket, sighting_key, url_parts
from provenance.ingest.readers import SightingInput
from provenance.licenses import normalize_license


@dataclass
class PreparedWindow:
    """One window's rows by status, the image facts to catalogue, and its bad items."""

    now: datetime
    size: int
    image_facts: list[ImageFacts] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"ok": [], "pending": [], "bad": []}
    )
    bad: list[dict[str, str]] = field(default_factory=list)


def _license_id(raw: str | None) -> str | None:
    return normalize_license(raw).spdx_id if raw else None


def _status(item: SightingInput, facts: ImageFacts | None) -> tuple[str, str | None]:
    error = item.error
    if error is None and facts is not None and not facts.decode_ok:
        error = facts.error
    if error is not None:
        return "bad", error
    return ("pending", None) if facts is None else ("ok", None)


def _key(
    source_name: str, item: SightingInput, license_raw: str | None, facts: ImageFacts | None
) -> str:
    sha = facts.sha256 if facts is not None else None
    if item.origin_kind != "manifest-row":
        return sighting_key(source_name, item.origin_kind, item.origin, sha)
    return sighting_key(
        source_name,
        item.origin_kind,
        item.url,
        item.caption,
        license_raw,
        item.creator,
        item.title,
        item.claimed_sha256,
        sha,
        None if item.url else item.origin,
    )


def sighting_row(
    source_name: str,
    item: SightingInput,
    facts: ImageFacts | None,
    run_id: int,
    now: datetime,
    default_license: str | None,
) -> dict[str, Any]:
    """The `sightings` row for one input (its status says ok, pending or bad)."""
    license_raw = item.license_raw or default_license
    status, error = _status(item, facts)
    host = domain = None
    bucket = None
    if item.url:
        parts = url_parts(item.url)
        if isinstance(parts, str):
            if status == "pending":
                status, error = "bad", parts
            else:
                item.extra["url_error"] = parts
        else:
            _scheme, host, domain = parts
            bucket = host_bucket(host)
    has_bytes = facts is not None
    return {
        "sighting_key": _key(source_name, item, license_raw, facts),
        "image_sha256": facts.sha256 if facts is not None and facts.format is not None else None,
        "status": status,
        "error": error,
        "url": item.url,
        "host": host,
        "domain": domain,
        "host_bucket": bucket,
        "source_name": source_name,
        "origin_kind": item.origin_kind,
        "origin": item.origin,
        "license_raw": license_raw,
        "license_spdx": _license_id(license_raw),
        "creator": item.creator,
        "title": item.title,
        "caption": item.caption,
        "tags": json.dumps(item.tags) if item.tags else None,
        "claimed_sha256": item.claimed_sha256,
        "extra": json.dumps(item.extra, sort_keys=True, default=str) if item.extra else None,
        "local_path": item.local_path if has_bytes else None,
        "local_offset": item.local_offset if has_bytes else None,
        "local_length": item.local_length if has_bytes else None,
        "run_id": run_id,
        "seen_at": now,
        "fetched_at": None,
    }


def prepare_window(
    source_name: str,
    items: Sequence[SightingInput],
    results: Sequence[ImageFacts | str],
    run_id: int,
    now: datetime,
    default_license: str | None,
) -> PreparedWindow:
    """Pair inputs with their analysis results (in order, for inputs that had bytes) and
    build every row."""
    window = PreparedWindow(now=now, size=len(items))
    analyzed = iter(results)
    for item in items:
        facts: ImageFacts | None = None
        if item.has_bytes:
            result = next(analyzed)
            if isinstance(result, str):
                item.error = result
            else:
                facts = result
                window.image_facts.append(facts)
        row = sighting_row(source_name, item, facts, run_id, now, default_license)
        window.rows[row["status"]].append(row)
        if row["status"] == "bad":
            window.bad.append({"origin": item.origin, "reason": row["error"] or "bad item"})
    return window
