"""Pure builders: query rows in, `Report` out. No I/O, no formatting."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from provenance.domain import iso
from provenance.licenses import license_facts
from provenance.reports.model import Cell, Report, Section

NO_LICENSE = "(no SPDX id)"
NO_DOMAIN = "(no URL)"


def family_of(spdx_id: str | None) -> str:
    """The license family of an SPDX id ('cc-by', 'mit', ...), or '(unknown)'."""
    if spdx_id is None:
        return "(unknown)"
    return license_facts(spdx_id).family or spdx_id.lower()


def licenses_report(variants: Sequence[Any], by_spdx: Sequence[Any],
                    meta: Mapping[str, Any]) -> Report:
    """By SPDX id and family, the raw texts that mapped to each, and unrecognized texts."""
    images = {r.license_spdx: int(r.images) for r in by_spdx}
    sightings: Counter[str | None] = Counter()
    texts: Counter[str | None] = Counter()
    variant_rows: list[tuple[Cell, ...]] = []
    unrecognized: list[tuple[Cell, ...]] = []
    for r in variants:
        sightings[r.license_spdx] += int(r.sightings)
        texts[r.license_spdx] += r.license_raw is not None
        if r.license_spdx is not None:
            variant_rows.append((r.license_spdx, r.license_raw, int(r.sightings), int(r.images)))
        elif r.license_raw is not None:
            unrecognized.append((r.license_raw, int(r.sightings), int(r.images)))
    ids = sorted(sightings, key=lambda s: (-images.get(s, 0), -sightings[s], s or ""))
    by_id = [(s or NO_LICENSE, family_of(s), images.get(s, 0), sightings[s], texts[s])
             for s in ids]
    families: dict[str, list[Any]] = defaultdict(lambda: [set(), 0])
    for spdx, family, _images, count, _texts in by_id:
        if spdx != NO_LICENSE:
            families[family][0].add(spdx)
            families[family][1] += count
    family_rows = sorted(((f, ", ".join(sorted(v[0])), v[1]) for f, v in families.items()),
                         key=lambda row: (-row[2], row[0]))
    return Report("licenses", "Licenses", (
        Section("licenses", "By SPDX id (images: distinct images with a sighting under it)",
                ("spdx_id", "family", "images", "sightings", "texts"), tuple(by_id)),
        Section("families", "By family", ("family", "spdx_ids", "sightings"),
                tuple(family_rows)),
        Section("variants", "License texts that mapped to each SPDX id",
                ("spdx_id", "text", "sightings", "images"), tuple(variant_rows)),
        Section("unrecognized", "License texts that mapped to no SPDX id (verbatim)",
                ("text", "sightings", "images"), tuple(unrecognized)),
    ), meta)


def domains_report(rows: Sequence[Any], meta: Mapping[str, Any]) -> Report:
    """Images and sightings per registrable domain, top first."""
    body = tuple((r.domain or NO_DOMAIN, int(r.images), int(r.sightings)) for r in rows)
    return Report("domains", "Domains", (
        Section("domains", "Images and sightings per registrable domain",
                ("domain", "images", "sightings"), body),), meta)


def _transitions(history: Iterable[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    """Consecutive distinct statuses with the time each began."""
    out: list[tuple[str, datetime]] = []
    for status, when in history:
        if not out or out[-1][0] != status:
            out.append((status, when))
    return out


def signals_report(latest: Sequence[Any], observations: Sequence[Any],
                   histories: Iterable[Any], meta: Mapping[str, Any]) -> Report:
    """Latest status counts per kind, all observations, and hosts whose status changed."""
    grouped: dict[tuple[str, str], list[tuple[str, datetime]]] = defaultdict(list)
    for r in histories:
        grouped[(r.subject, r.kind)].append((r.status, r.observed_at))
    changes: list[tuple[Cell, ...]] = []
    for (host, kind), history in sorted(grouped.items()):
        steps = _transitions(history)
        if len(steps) < 2:
            continue  # e.g. allowed, reserved, allowed is a change; allowed twice is not
        text = " -> ".join(f"{status} ({iso(when)})" for status, when in steps)
        changes.append((host, kind, len(steps) - 1, steps[-1][0], iso(steps[-1][1]), text))
    return Report("signals", "Signals", (
        Section("latest", "Latest observation per subject: subjects by kind and status",
                ("scope", "kind", "status", "subjects"),
                tuple((r.scope, r.kind, r.status, int(r.subjects)) for r in latest)),
        Section("observations", "All observations recorded (history included)",
                ("kind", "status", "observations"),
                tuple((r.kind, r.status, int(r.observations)) for r in observations)),
        Section("changes", "Hosts whose status changed over time",
                ("host", "kind", "changes", "status", "since", "history"), tuple(changes)),
    ), meta)


def _status_then(row: Any, as_of: datetime | None) -> tuple[str, datetime | None]:
    withdrawn = row.withdrawn_at
    if withdrawn is not None and (as_of is None or withdrawn <= as_of):
        return "withdrawn", withdrawn
    return ("active" if row.status == "withdrawn" else row.status), None


def optouts_report(rows: Sequence[Any], as_of: datetime | None,
                   meta: Mapping[str, Any]) -> Report:
    """The complaints register: one row per request with what it matched and its effect.

    `pending_effect` counts matched images already shipped in an export while the request is
    active: those exports need a revocation notice or a rewrite."""
    body: list[tuple[Cell, ...]] = []
    for r in rows:
        status, withdrawn_at = _status_then(r, as_of)
        pending = int(r.exported_images) if status == "active" else 0
        body.append((int(r.id), iso(r.received_at), iso(r.recorded_at), r.requester,
                     r.reference, r.scope_kind, r.scope_value, status, iso(withdrawn_at),
                     int(r.images), int(r.sightings), iso(r.first_matched_at), int(r.exports),
                     int(r.exported_images), pending))
    active = sum(1 for row in body if row[7] == "active")
    summary = (("requests", len(body)), ("active", active), ("withdrawn", len(body) - active),
               ("matched_images", sum(int(row[9] or 0) for row in body)),
               ("pending_effect", sum(int(row[14] or 0) for row in body)))
    return Report("optouts", "Opt-out requests (complaints register)", (
        Section("summary", "Totals", ("measure", "value"), summary),
        Section("requests", "Requests, what they matched, decision and effect",
                ("request_id", "received_at", "recorded_at", "requester", "reference",
                 "scope_kind", "scope_value", "status", "withdrawn_at", "matched_images",
                 "matched_sightings", "first_matched_at", "exports", "exported_images",
                 "pending_effect"), tuple(body)),
    ), meta)


def exports_report(rows: Sequence[Any], revoked: Mapping[int, int],
                   meta: Mapping[str, Any]) -> Report:
    """Each export with its policy, counts, and how many members are now revoked."""
    body = []
    for r in rows:
        excluded = sum(json.loads(r.excluded).values()) if r.excluded else 0
        body.append((int(r.id), r.name, r.status, r.policy_name, r.policy_sha256[:12],
                     iso(r.created_at), iso(r.completed_at), int(r.shards), int(r.members),
                     excluded, int(r.total_bytes or 0), revoked.get(int(r.id), 0)))
    return Report("exports", "Exports", (
        Section("exports", "Exports, their policy, counts and revocations since",
                ("export_id", "name", "status", "policy", "policy_sha256", "created_at",
                 "completed_at", "shards", "samples", "excluded", "bytes", "revoked"),
                tuple(body)),), meta)


def count_tags(rows: Iterable[tuple[str, str]], limit: int) -> list[tuple[str, int]]:
    """(tag, images) for the most common tags; unparseable tag lists count as '(unparseable)'."""
    seen: dict[str, set[str]] = defaultdict(set)
    for sha, raw in rows:
        try:
            tags = json.loads(raw)
        except ValueError:
            tags = ["(unparseable)"]
        if not isinstance(tags, list):
            tags = [tags]
        for tag in tags:
            seen[str(tag).strip().lower()].add(sha)
    counts = sorted(((tag, len(shas)) for tag, shas in seen.items() if tag),
                    key=lambda item: (-item[1], item[0]))
    return counts[:limit]


def composition_report(totals: Any, facets: Mapping[str, Sequence[tuple[Any, int]]],
                       captioned: int, meta: Mapping[str, Any]) -> Report:
    """The make-up of the catalog or of one export, facet by facet (counts of images)."""
    images = int(totals.images)
    summary = (("images", images), ("bytes", int(totals.bytes)), ("with_caption", captioned),
               ("without_caption", images - captioned))
    titles = {"sources": "Sources", "domains": "Top domains", "licenses": "Licenses (SPDX)",
              "formats": "Formats", "pixels": "Size (pixels)", "bytes": "Size (bytes)",
              "tags": "Top tags and categories"}
    sections = [Section("summary", "Summary", ("measure", "value"), summary)]
    for name, title in titles.items():
        rows = tuple((str(v), int(n)) for v, n in facets.get(name, ()))
        sections.append(Section(name, title, ("value", "images"), rows))
    return Report("composition", "Composition", tuple(sections), meta)
