"""The documents an export writes: each sample's `<key>.json` and the export's `manifest.json`.

What goes where is decided by determinism. A sample's JSON is part of the shard bytes, so it
holds only facts of the catalog and the policy (source URL, license, creator, attribution,
signals with their observation times, the policy's name and sha256) and never the export id or
the time of the export: two exports of the same catalog and policy, or one export written by N
partitions, then give byte-identical shards. Run-specific values (export id, times, parent
export) live in `manifest.json`, which is written last and is what marks an export complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provenance.domain import iso
from provenance.export.attribution import Credit, attribution_text

MANIFEST_FORMAT = "provenance-export/1"

# Pillow format names (any case) -> the file extension WebDataset decoders dispatch on.
_EXTENSIONS = {
    "jpeg": "jpg", "jpg": "jpg", "mpo": "jpg", "png": "png", "webp": "webp", "gif": "gif",
    "tiff": "tiff", "bmp": "bmp", "avif": "avif", "heif": "heic", "heic": "heic", "ico": "ico",
    "jpeg2000": "jp2", "jxl": "jxl",
}


def extension_for(image_format: str | None) -> str:
    """The member extension for an image format; unknown formats are `bin`, never guessed."""
    return _EXTENSIONS.get((image_format or "").lower(), "bin")


@dataclass(frozen=True)
class SampleSource:
    """One sighting of the image, as it appears in the sample's JSON."""

    url: str | None
    source_name: str | None
    license_raw: str | None
    license_spdx: str | None
    creator: str | None
    title: str | None
    caption: str | None


@dataclass(frozen=True)
class SignalSummary:
    scope: str
    subject: str
    kind: str
    status: str
    observed_at: datetime
    source: str | None
    detail: str | None


@dataclass(frozen=True)
class SampleRecord:
    """Everything a sample's JSON says, gathered from the catalog."""

    key: str
    image_format: str | None
    byte_size: int
    sources: Sequence[SampleSource]
    signals: Sequence[SignalSummary]

    @property
    def primary(self) -> SampleSource | None:
        """The first sighting with a recognised license, else the first sighting (sightings
        come ordered by their content-derived key, so the choice is deterministic)."""
        for src in self.sources:
            if src.license_spdx:
                return src
        return self.sources[0] if self.sources else None

    @property
    def caption(self) -> str | None:
        return next((s.caption for s in self.sources if s.caption), None)

    def credit(self) -> Credit:
        p = self.primary
        return Credit(
            key=self.key,
            creator=p.creator if p else None,
            title=p.title if p else None,
            source_url=p.url if p else None,
            license_spdx=p.license_spdx if p else None,
            license_raw=p.license_raw if p else None,
        )


# One encoder for every sample: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _dumps(doc: Any) -> bytes:
    return _COMPACT.encode(doc).encode()


def sample_json(record: SampleRecord, policy_name: str, policy_sha256: str) -> bytes:
    """The `<key>.json` member: deterministic (sorted keys, compact, UTF-8)."""
    p = record.primary
    credit = record.credit()
    doc = {
        "key": record.key,
        "sha256": record.key,
        "format": (record.image_format or "").lower() or None,
        "byte_size": record.byte_size,
        "url": p.url if p else None,
        "source_name": p.source_name if p else None,
        "license": {
            "spdx_id": credit.license_spdx,
            "raw": credit.license_raw,
            "url": credit.license_url,
            "attribution_required": credit.required,
        },
        "creator": credit.creator,
        "title": credit.title,
        "attribution": attribution_text(credit) if credit.required else None,
        "caption": record.caption,
        "sources": [
            {"url": s.url, "source_name": s.source_name, "license_raw": s.license_raw,
             "license_spdx": s.license_spdx, "creator": s.creator, "title": s.title}
            for s in record.sources
        ],
        "signals": [
            {"scope": s.scope, "subject": s.subject, "kind": s.kind, "status": s.status,
             "observed_at": iso(s.observed_at), "source": s.source, "detail": s.detail}
            for s in record.signals
        ],
        "policy": {"name": policy_name, "sha256": policy_sha256},
    }
    return _dumps(doc)


@dataclass(frozen=True)
class ShardEntry:
    index: int
    path: str  # file name relative to the export directory
    samples: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ManifestFacts:
    """The run-specific and catalog-level facts of one complete export."""

    export_id: int
    name: str
    parent_export_id: int | None
    created_at: datetime
    completed_at: datetime
    policy_name: str
    policy_sha256: str
    policy_text: str
    shard_size: int | None
    shard_bytes: int | None
    included: int
    excluded: Mapping[str, int]
    total_bytes: int
    shards: Sequence[ShardEntry]
    files: Mapping[str, str]  # other files written (ATTRIBUTION.*, croissant.json) -> sha256


def manifest_json(facts: ManifestFacts) -> bytes:
    """`manifest.json`: pretty-printed, sorted keys, so the same facts give the same bytes."""
    doc = {
        "format": MANIFEST_FORMAT,
        "export_id": facts.export_id,
        "name": facts.name,
        "parent_export_id": facts.parent_export_id,
        "created_at": iso(facts.created_at),
        "completed_at": iso(facts.completed_at),
        "policy": {"name": facts.policy_name, "sha256": facts.policy_sha256,
                   "text": facts.policy_text},
        "catalog": {
            "evaluated": facts.included + sum(facts.excluded.values()),
            "included": facts.included,
            "excluded": dict(sorted(facts.excluded.items())),
        },
        "shard_size": facts.shard_size,
        "shard_bytes": facts.shard_bytes,
        "total_image_bytes": facts.total_bytes,
        "shards": [
            {"index": s.index, "path": s.path, "samples": s.samples, "bytes": s.bytes,
             "sha256": s.sha256}
            for s in facts.shards
        ],
        "files": dict(sorted(facts.files.items())),
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
