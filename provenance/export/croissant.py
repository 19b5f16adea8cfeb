"""`croissant.json`: ML Commons Croissant 1.1 metadata describing an export's shards.

The tar shards are `cr:FileObject`s (with their sha256); two `cr:FileSet`s select the image
members and the per-sample JSON members inside them (`containedIn`); the `samples` RecordSet
reads each sample's key, source URL, license, license URL, creator, attribution and caption
from its JSON member, so license and source are stated per record. The dataset-level
`license` lists every license that occurs. The context mirrors the one `mlcroissant` writes
for version 1.1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
_MEDIA_TYPES = {
    "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "tiff": "image/tiff", "bmp": "image/bmp", "avif": "image/avif", "heic": "image/heic",
    "ico": "image/vnd.microsoft.icon", "jp2": "image/jp2", "jxl": "image/jxl",
    "bin": "application/octet-stream",
}

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# (field name, JSON path in the sample's JSON member, description)
_JSON_FIELDS = (
    ("key", "$.key", "The sample key: sha256 of the image bytes."),
    ("url", "$.url", "Where the image was found (source URL)."),
    ("source_name", "$.source_name", "The named source the image was ingested from."),
    ("license", "$.license.spdx_id", "SPDX id of the image's license (null if unrecognised)."),
    ("license_raw", "$.license.raw", "The license text as found, verbatim."),
    ("license_url", "$.license.url", "URL of the license deed or text."),
    ("creator", "$.creator", "The creator named by the source."),
    ("attribution", "$.attribution", "Credit line where the license requires attribution."),
    ("caption", "$.caption", "The caption (also in the sample's .txt member when present)."),
)


@dataclass(frozen=True)
class CroissantShard:
    path: str  # relative to the export directory
    sha256: str
    bytes: int


def _field(name: str, path: str, description: str) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"samples/{name}",
        "name": name,
        "description": description,
        "dataType": "sc:Text",
        "source": {"fileSet": {"@id": "sample-metadata"}, "extract": {"jsonPath": path}},
    }


def croissant_document(
    name: str,
    description: str,
    shards: Sequence[CroissantShard],
    image_extensions: Sequence[str],
    licenses: Sequence[str],
    date_published: str | None,
) -> dict[str, Any]:
    """The Croissant JSON-LD document for one export (deterministic for the same inputs)."""
    shard_refs = [{"@id": s.path} for s in shards]
    distribution: list[dict[str, Any]] = [
        {"@type": "cr:FileObject", "@id": s.path, "name": s.path, "contentUrl": s.path,
         "contentSize": f"{s.bytes} B", "encodingFormat": "application/x-tar", "sha256": s.sha256}
        for s in shards
    ]
    exts = sorted(set(image_extensions))
    distribution.append({
        "@type": "cr:FileSet", "@id": "images", "name": "images",
        "description": "The original image bytes, one member per sample named <key>.<ext>.",
        "containedIn": shard_refs,
        "encodingFormat": [_MEDIA_TYPES.get(e, "application/octet-stream") for e in exts],
        "includes": [f"*.{e}" for e in exts],
    })
    distribution.append({
        "@type": "cr:FileSet", "@id": "sample-metadata", "name": "sample-metadata",
        "description": "Per-sample provenance: source, license, creator, signals, policy.",
        "containedIn": shard_refs,
        "encodingFormat": "application/json",
        "includes": "*.json",
    })
    record_set = {
        "@type": "cr:RecordSet",
        "@id": "samples",
        "name": "samples",
        "description": "One record per sample, with its license and source.",
        "key": {"@id": "samples/key"},
        "field": [_field(*spec) for spec in _JSON_FIELDS],
    }
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": name,
        "description": description,
        "url": f"file:{name}",
        "version": "1.0.0",
        "datePublished": date_published,
        "citeAs": f"{name}: an export made with provenance; see manifest.json for its policy",
        "license": sorted(set(licenses)),
        "distribution": distribution,
        "recordSet": [record_set],
    }


def croissant_json(document: dict[str, Any]) -> bytes:
    """Serialised with sorted keys so the same export gives the same bytes."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
