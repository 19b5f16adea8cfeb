"""Sighting rows from analyzed inputs: keys, URL parts, license ids, status. Pure, no I/O.

Sighting keys are derived from content so that re-ingesting, and partitioned runs, agree:
a file or tar member is keyed by where it is and the bytes' hash; a manifest row by what it
says (URL, caption, license, creator, title, claimed hash), not by its row number.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from provenance.domain import ImageFacts
from provenance.ingest.columnar import UrlRowBatch
from provenance.ingest.keys import SIGHTING_KEY_VERSION, host_bucket, sighting_key, url_parts
from provenance.ingest.readers import SightingInput, tag_values, text_value
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
    # URL-only manifest rows from the columnar path: pending sightings as columns.
    pending_columns: dict[str, list[Any]] = field(default_factory=dict)
    pending_shared: dict[str, Any] = field(default_factory=dict)

    def new_keys(self) -> list[str]:
        """Sighting keys of the ok and pending rows (what standing opt-outs apply to)."""
        keys = [r["sighting_key"] for r in self.rows["ok"] + self.rows["pending"]]
        return keys + self.pending_columns.get("sighting_key", [])


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


def prepare_url_batch(
    source_name: str,
    batch: UrlRowBatch,
    run_id: int,
    now: datetime,
    default_license: str | None,
) -> PreparedWindow:
    """The rows of a batch of URL-only manifest rows, column by column: the same rows that
    prepare_window makes of the same rows read one by one. Rows that end up `bad` (no URL, a
    refused URL, a broken CSV line) take the generic path; every other row is `pending`."""
    window = PreparedWindow(now=now, size=batch.size)
    column = batch.column
    urls = _texts(column("url"), batch.size)
    captions = _texts(column("caption"), batch.size)
    creators = _texts(column("creator"), batch.size)
    titles = _texts(column("title"), batch.size)
    claimed = _texts(column("claimed_sha256"), batch.size)
    licenses = [raw or default_license for raw in _texts(column("license_raw"), batch.size)]
    tags = _tag_json(column("tags"), batch.size)
    extras = _extra_json(batch)
    spdx: dict[str | None, str | None] = {}
    cols: dict[str, list[Any]] = {
        name: []
        for name in ("sighting_key", "url", "host", "domain", "host_bucket", "origin",
                     "license_raw", "license_spdx", "creator", "title", "caption", "tags",
                     "claimed_sha256", "extra")
    }
    good: list[int] = []
    prefix = "\x1f".join((SIGHTING_KEY_VERSION, source_name, "manifest-row"))
    sha256 = hashlib.sha256
    for i, url in enumerate(urls):
        parts = url_parts(url) if url and i not in batch.broken else None
        if not url or parts is None or isinstance(parts, str):
            _generic_row(window, source_name, batch.item(i), run_id, now, default_license)
            continue
        good.append(i)
        cols["host"].append(parts[1])
        cols["domain"].append(parts[2])
        lic = licenses[i]
        if lic not in spdx:
            spdx[lic] = _license_id(lic)
        cols["license_spdx"].append(spdx[lic])
        # sighting_key(source_name, "manifest-row", url, caption, license, creator, title,
        # claimed sha256, None, None), spelled out: this runs for every row.
        text = "\x1f".join((prefix, url, captions[i] or "", lic or "", creators[i] or "",
                            titles[i] or "", claimed[i] or "", "", ""))
        cols["sighting_key"].append(sha256(text.encode("utf-8", "surrogatepass")).hexdigest())
    cols["host_bucket"] = [host_bucket(host) for host in cols["host"]]
    cols["origin"] = [batch.origin(i) for i in good]
    for name, values in (("url", urls), ("license_raw", licenses), ("creator", creators),
                         ("title", titles), ("caption", captions), ("tags", tags),
                         ("claimed_sha256", claimed), ("extra", extras)):
        cols[name] = [values[i] for i in good]
    window.pending_columns = cols
    window.pending_shared = {
        "image_sha256": None, "status": "pending", "error": None, "source_name": source_name,
        "origin_kind": "manifest-row", "local_path": None, "local_offset": None,
        "local_length": None, "run_id": run_id, "seen_at": now, "fetched_at": None,
    }
    return window


def _generic_row(
    window: PreparedWindow,
    source_name: str,
    item: SightingInput,
    run_id: int,
    now: datetime,
    default_license: str | None,
) -> None:
    row = sighting_row(source_name, item, None, run_id, now, default_license)
    window.rows[row["status"]].append(row)
    if row["status"] == "bad":
        window.bad.append({"origin": item.origin, "reason": row["error"] or "bad item"})


def _texts(values: list[Any] | None, size: int) -> list[str | None]:
    if values is None:
        return [None] * size
    return list(map(text_value, values))


def _tag_json(values: list[Any] | None, size: int) -> list[str | None]:
    if values is None:
        return [None] * size
    out: list[str | None] = []
    for value in values:
        tags = tag_values(value)
        out.append(json.dumps(tags) if tags else None)
    return out


def _extra_json(batch: UrlRowBatch) -> list[str | None]:
    """The `extra` JSON of each row: the manifest's other columns as the generic reader keeps
    them (empty values left out, non-numbers as text), written as json.dumps(extra,
    sort_keys=True) writes them, one column at a time."""
    names = sorted(batch.manifest.extras)
    if not names:
        return [None] * batch.size
    members = []
    for name in names:
        prefix = encode_basestring_ascii(name) + ": "
        members.append([None if v is None or v == "" else prefix + _json_scalar(v)
                        for v in batch.raw[name]])
    if len(members) == 1:
        return [None if m is None else "{" + m + "}" for m in members[0]]
    out: list[str | None] = []
    for row in zip(*members, strict=True):
        present = [m for m in row if m is not None]
        out.append("{" + ", ".join(present) + "}" if present else None)
    return out


def _json_scalar(value: Any) -> str:
    """json.dumps of one manifest value as the generic reader keeps it."""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (math.inf, -math.inf):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return encode_basestring_ascii(str(value))
