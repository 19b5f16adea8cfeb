"""Opt-out use cases: record requests (one transaction with their matches), bulk import,
list/show/withdraw, and the standing rules ingest and fetch apply to every new batch."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from provenance import optout as rules
from provenance.config import Settings
from provenance.db import optout_queries as q
from provenance.domain import iso, utcnow
from provenance.errors import BadInput
from provenance.eventlog import append_event
from provenance.ingest.analyze import analyze_bytes
from provenance.phash_index import PHashIndex, crop_probes, hex_to_int
from provenance.services.catalog import open_catalog

SHOW_IMAGES_LIMIT = 1000
ERRORS_LISTED = 1000


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    existing: int = 0
    matched: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "existing": self.existing,
            "rejected": self.rejected,
            "matched": self.matched,
            "errors": self.errors,
        }


# --------------------------------------------------------------------------- recording


def _row(req: rules.RequestInput, now: datetime) -> dict[str, Any]:
    return {
        "reference": req.reference,
        "requester": req.requester,
        "contact": req.contact,
        "received_at": req.received_at,
        "recorded_at": now,
        "scope_kind": req.scope.kind,
        "scope_value": req.scope.value,
        "scope_domain": req.scope.domain,
        "phash": req.phash,
        "phash_probes": req.phash_probes,
        "max_distance": req.max_distance,
        "status": "active",
        "withdrawn_at": None,
        "notes": req.notes,
    }


def record_requests(
    conn: Connection, requests: Sequence[rules.RequestInput], now: datetime
) -> tuple[dict[str, int], int, int]:
    """Store requests not recorded before (by reference) and match the new ones against the
    catalog, inside the caller's transaction. Returns (id by reference, new, matches)."""
    refs = [r.reference for r in requests]
    before = q.ids_by_reference(conn, refs)
    q.insert_requests(conn, [_row(r, now) for r in requests if r.reference not in before])
    ids = q.ids_by_reference(conn, refs)
    new_ids = [rid for ref, rid in ids.items() if ref not in before]
    matched = match_new_requests(conn, min(new_ids), max(new_ids), now) if new_ids else 0
    if new_ids:
        payload = {"request_ids": sorted(new_ids), "matched": matched}
        append_event(conn, "optout-request", payload, now)
    return ids, len(new_ids), matched


def match_new_requests(conn: Connection, first_id: int, last_id: int, now: datetime) -> int:
    """Match active requests with ids in [first_id, last_id] against the whole catalog."""
    matched = q.match_new_domains(conn, first_id, last_id, now)
    matched += q.match_new_hashes(conn, first_id, last_id, now)
    matched += _match_new_urls(conn, first_id, last_id, now)
    matched += _match_new_creators(conn, first_id, last_id, now)
    matched += _match_new_images(conn, first_id, last_id, now)
    return matched


def _match_row(
    rid: int, sha: str | None, sid: int | None, how: str, dist: int | None, now: datetime
) -> dict[str, Any]:
    return {
        "request_id": rid,
        "image_sha256": sha,
        "sighting_id": sid,
        "how": how,
        "distance": dist,
        "matched_at": now,
    }


def _match_new_urls(conn: Connection, first_id: int, last_id: int, now: datetime) -> int:
    """Candidates come from SQL by registrable domain; the URL rule is checked here because
    catalogued URLs are stored as seen, and only Python normalizes them."""
    keys: dict[int, str | None] = {}
    rows: list[dict[str, Any]] = []
    for rid, kind, value, sid, sha, url in q.url_candidates(conn, first_id, last_id):
        if sid not in keys:
            keys[sid] = rules.url_key(url) if url else None
        if rules.url_scope_matches(kind, value, keys[sid]):
            rows.append(_match_row(rid, sha, sid, kind, None, now))
    return q.insert_matches(conn, rows)


def _match_new_creators(conn: Connection, first_id: int, last_id: int, now: datetime) -> int:
    wanted: dict[str, list[int]] = defaultdict(list)
    for rid, value, *_ in q.new_requests_of_kind(conn, first_id, last_id, "creator"):
        wanted[value].append(rid)
    if not wanted:
        return 0
    keys: dict[str, str | None] = {}
    rows: list[dict[str, Any]] = []
    for sid, sha, creator in q.sightings_with_creator(conn):
        if creator not in keys:
            keys[creator] = rules.creator_key(creator)
        key = keys[creator]
        for rid in wanted.get(key or "", ()):
            rows.append(_match_row(rid, sha, sid, "creator", None, now))
    rows += _embedded_creator_matches(conn, wanted, None, now)
    return q.insert_matches(conn, rows)


def _embedded_creator_matches(
    conn: Connection, wanted: Mapping[str, Sequence[int]], shas: Sequence[str] | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Image-level matches of creator requests (`wanted`: request ids by creator key) with
    the creators images name in their own metadata (of the catalog, or of `shas`)."""
    rows: list[dict[str, Any]] = []
    for sha, facts in q.images_naming_creators(conn, rules.EMBEDDED_CREATOR_FACTS, shas):
        try:
            named = rules.embedded_creator_keys(json.loads(facts))
        except (ValueError, AttributeError):
            continue  # not a facts object: nothing is named
        for rid in sorted({r for key in named for r in wanted.get(key, ())}):
            rows.append(_match_row(rid, sha, None, "embedded-creator", None, now))
    return rows


def _probes(phash: str | None, probes: str | None) -> list[int]:
    texts = [phash or "", *(probes or "").split(",")]
    out: list[int] = []
    for text in texts:
        try:
            out.append(hex_to_int(text))
        except ValueError:
            continue
    return out


def _match_new_images(conn: Connection, first_id: int, last_id: int, now: datetime) -> int:
    requests = q.new_requests_of_kind(conn, first_id, last_id, "image")
    if not requests:
        return 0
    index = PHashIndex.from_pairs(q.catalog_phashes(conn))
    rows = [
        _match_row(rid, sha, None, "phash", dist, now)
        for rid, _value, phash, probes, max_distance in requests
        for sha, dist in index.query(_probes(phash, probes), _max_distance(max_distance))
    ]
    return q.insert_matches(conn, rows)


def _max_distance(value: int | None) -> int:
    return rules.DEFAULT_MAX_DISTANCE if value is None else value


# --------------------------------------------------------------------------- use cases


def image_request_fields(path: Path, max_distance: int | None) -> dict[str, Any]:
    """sha256, pHash (as ingest computes it) and crop probes of a request's picture."""
    if max_distance is not None and not 0 <= max_distance <= rules.MAX_MAX_DISTANCE:
        raise BadInput(f"--max-distance must be 0..{rules.MAX_MAX_DISTANCE} (got {max_distance})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read the image ({exc.strerror or exc})") from exc
    facts = analyze_bytes(data, embedded=False)
    if not facts.decode_ok or facts.phash is None:
        raise BadInput(f"{path}: not a decodable image ({facts.error})")
    return {
        "scope": rules.ScopeSpec("image", facts.sha256),
        "phash": facts.phash,
        "phash_probes": ",".join(crop_probes(data)),
        "max_distance": rules.DEFAULT_MAX_DISTANCE if max_distance is None else max_distance,
    }


def add_request(
    settings: Settings,
    fields: Mapping[str, str | None],
    *,
    image: Path | None = None,
    max_distance: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record one request and its matches in one transaction; the same reference twice
    returns the first request. `fields`: scope, value, requester, contact, reference,
    received_at, notes."""
    now = now or utcnow()
    if image is not None:
        extra = image_request_fields(image, max_distance)
        scope: rules.ScopeSpec = extra.pop("scope")
        # Validate the other fields as a sha256 request, then make it the image request.
        req = rules.request_from_fields(
            {**fields, "scope": "sha256", "value": scope.value}, {}, now
        )
        req = replace(
            req,
            scope=scope,
            **extra,
            reference=fields.get("reference") or rules.auto_reference(req.requester, scope),
        )
    else:
        if max_distance is not None:
            raise BadInput("--max-distance applies only to --image requests")
        req = rules.request_from_fields(fields, {}, now)
    engine = open_catalog(settings)
    try:
        with engine.begin() as conn:
            ids, new, matched = record_requests(conn, [req], now)
            request_id = ids[req.reference]
            if not new:
                matched = q.match_counts(conn, request_id)[0]
    finally:
        engine.dispose()
    return {
        "request_id": request_id,
        "matched": matched,
        "created": bool(new),
        "reference": req.reference,
    }


def _file_format(path: Path, defaults: Mapping[str, str | None]) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if not defaults.get("scope"):
        raise BadInput(
            f"{path}: a plain list needs --scope (domain, url or url-prefix); "
            "CSV (.csv) and JSONL (.jsonl) files carry a `scope` column"
        )
    return "list"


def import_requests(
    settings: Settings, path: Path, defaults: Mapping[str, str | None], now: datetime | None = None
) -> ImportReport:
    """Validate every row first, then store the good ones and their matches in one transaction."""
    now = now or utcnow()
    fmt = _file_format(path, defaults)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    report = ImportReport()
    requests: dict[str, rules.RequestInput] = {}
    for number, fields in rules.parse_request_file(text, fmt):
        report.rows += 1
        try:
            if isinstance(fields, str):
                raise BadInput(fields)
            req = rules.request_from_fields(fields, defaults, now)
        except BadInput as exc:
            report.rejected += 1
            if len(report.errors) < ERRORS_LISTED:
                report.errors.append({"row": number, "reason": str(exc)})
            continue
        requests.setdefault(req.reference, req)
    engine = open_catalog(settings)
    try:
        with engine.begin() as conn:
            _ids, new, matched = record_requests(conn, list(requests.values()), now)
    finally:
        engine.dispose()
    report.imported, report.matched = new, matched
    report.existing = report.rows - report.rejected - new
    return report


def _request_json(row: Any) -> dict[str, Any]:
    return {
        "request_id": row.id,
        "reference": row.reference,
        "requester": row.requester,
        "contact": row.contact,
        "received_at": iso(row.received_at),
        "recorded_at": iso(row.recorded_at),
        "scope": {"kind": row.scope_kind, "value": row.scope_value},
        "phash": row.phash,
        "max_distance": row.max_distance,
        "status": row.status,
        "withdrawn_at": iso(row.withdrawn_at),
        "notes": row.notes,
    }


def list_requests(settings: Settings, status: str | None = None) -> list[dict[str, Any]]:
    """Every request in id order, with how many images and sightings it matched."""
    if status not in (None, "active", "withdrawn"):
        raise BadInput(f"--status must be active or withdrawn (got {status!r})")
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            rows = q.list_requests(conn, status)
    finally:
        engine.dispose()
    return [
        {
            **_request_json(r),
            "matched_images": int(r.matched_images),
            "matched_sightings": int(r.matched_sightings),
        }
        for r in rows
    ]


def _exports_json(shards: Iterable[Any], received_at: datetime) -> list[dict[str, Any]]:
    exports: dict[int, dict[str, Any]] = {}
    for export_id, name, created_at, out_dir, shard_index, path, samples in shards:
        entry = exports.setdefault(
            export_id,
            {
                "export_id": export_id,
                "name": name,
                "created_at": iso(created_at),
                "out": out_dir,
                "made_before_request": created_at < received_at,
                "samples": 0,
                "shards": [],
            },
        )
        entry["samples"] += int(samples)
        entry["shards"].append({"shard_index": shard_index, "path": path, "samples": int(samples)})
    return list(exports.values())


def show_request(settings: Settings, request_id: int) -> dict[str, Any]:
    """A request, what it matched, and the past exports and shards that hold those images."""
    engine = open_catalog(settings)
    try:
        with engine.connect() as conn:
            row = q.get_request(conn, request_id)
            if row is None:
                raise BadInput(
                    f"no opt-out request with id {request_id}; see `provenance optout list`"
                )
            images, sightings = q.match_counts(conn, request_id)
            listed = q.matched_images(conn, request_id, SHOW_IMAGES_LIMIT)
            shards = q.affected_shards(conn, request_id)
    finally:
        engine.dispose()
    return {
        **_request_json(row),
        "matched": {"images": images, "sightings": sightings},
        "images": [
            {"sha256": sha, "how": how, "distance": dist, "sightings": int(n)}
            for sha, how, dist, n in listed
        ],
        "images_truncated": images > len(listed),
        "exports": _exports_json(shards, row.received_at),
    }


def withdraw_request(
    settings: Settings, request_id: int, now: datetime | None = None
) -> dict[str, Any]:
    """Withdraw a request: later exports may include its images again; matches stay as history."""
    now = now or utcnow()
    engine = open_catalog(settings)
    try:
        with engine.begin() as conn:
            row = q.get_request(conn, request_id)
            if row is None:
                raise BadInput(
                    f"no opt-out request with id {request_id}; see `provenance optout list`"
                )
            changed = q.withdraw(conn, request_id, now)
            if changed:
                append_event(conn, "optout-withdrawn", {"request_id": request_id}, now)
            row = q.get_request(conn, request_id)
    finally:
        engine.dispose()
    return {**_request_json(row), "changed": changed}


# --------------------------------------------------------------------------- standing rules


def apply_standing_optouts(
    conn: Connection,
    *,
    image_shas: Sequence[str] = (),
    sighting_ids: Sequence[int] = (),
    now: datetime,
) -> int:
    """Match new images and sightings against every ACTIVE request, inside the caller's
    transaction (ingest and fetch call this per batch). Returns the number of new matches."""
    rows = _image_matches(conn, image_shas, now) if image_shas else []
    if sighting_ids:
        rows += _sighting_matches(conn, sighting_ids, now)
    return q.insert_matches(conn, rows) if rows else 0


def _image_matches(conn: Connection, shas: Sequence[str], now: datetime) -> list[dict[str, Any]]:
    rows = [
        _match_row(rid, value, None, "sha256", 0, now)
        for rid, _kind, value in q.active_requests(conn, ("sha256", "image"), shas)
    ]
    creators: dict[str, list[int]] = defaultdict(list)
    for rid, value in q.active_creator_requests(conn):
        creators[value].append(rid)
    if creators:
        rows += _embedded_creator_matches(conn, creators, shas, now)
    image_requests = q.active_image_requests(conn)
    if image_requests:
        index = PHashIndex.from_pairs(q.image_phashes(conn, shas))
        for rid, phash, probes, max_distance in image_requests:
            rows.extend(
                _match_row(rid, sha, None, "phash", dist, now)
                for sha, dist in index.query(_probes(phash, probes), _max_distance(max_distance))
            )
    return rows


def _sighting_matches(conn: Connection, ids: Sequence[int], now: datetime) -> list[dict[str, Any]]:
    sightings = q.sightings_by_id(conn, ids)
    suffixes = {s.id: rules.host_suffixes(s.host, s.domain) for s in sightings if s.host}
    by_domain: dict[str, list[int]] = defaultdict(list)
    for rid, _kind, value in q.active_requests(
        conn, ("domain",), {x for xs in suffixes.values() for x in xs}
    ):
        by_domain[value].append(rid)
    url_requests: dict[str, list[Any]] = defaultdict(list)
    for req in q.active_url_requests(conn, {s.domain for s in sightings if s.domain}):
        url_requests[req.scope_domain].append(req)
    creators = {s.id: rules.creator_key(s.creator) for s in sightings if s.creator}
    by_creator: dict[str, list[int]] = defaultdict(list)
    for rid, _kind, value in q.active_requests(
        conn, ("creator",), {c for c in creators.values() if c}
    ):
        by_creator[value].append(rid)
    rows: list[dict[str, Any]] = []
    for s in sightings:
        for rid in sorted({r for x in suffixes.get(s.id, ()) for r in by_domain.get(x, ())}):
            rows.append(_match_row(rid, s.image_sha256, s.id, "domain", None, now))
        key = rules.url_key(s.url) if s.url and s.domain in url_requests else None
        for req in url_requests.get(s.domain or "", ()):
            if rules.url_scope_matches(req.scope_kind, req.scope_value, key):
                rows.append(_match_row(req.id, s.image_sha256, s.id, req.scope_kind, None, now))
        for rid in by_creator.get(creators.get(s.id) or "", ()):
            rows.append(_match_row(rid, s.image_sha256, s.id, "creator", None, now))
    return rows
