"""Reads behind `provenance show`: one image with everything the catalog knows about it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.db.models import (
    Export,
    ExportMember,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
)
from provenance.errors import BadInput


def resolve_key(conn: Session, key: str) -> str:
    """A full sha256 or a unique prefix of one (at least 6 hex characters)."""
    value = key.strip().lower()
    if not value or any(c not in "0123456789abcdef" for c in value):
        raise BadInput(f"{key!r} is not a sha256 or a prefix of one")
    if len(value) == 64:
        found = conn.execute(select(Image.sha256).where(Image.sha256 == value)).scalar()
        if found is None:
            raise BadInput(f"no image {value} in the catalog")
        return value
    if len(value) < 6:
        raise BadInput("give at least 6 hex characters of the sha256")
    matches = list(
        conn.execute(
            select(Image.sha256)
            .where(Image.sha256.startswith(value))
            .order_by(Image.sha256)
            .limit(3)
        ).scalars()
    )
    if not matches:
        raise BadInput(f"no image whose sha256 starts with {value}")
    if len(matches) > 1:
        raise BadInput(f"{value} is ambiguous ({', '.join(m[:12] for m in matches)}, ...)")
    return matches[0]


def image_row(conn: Session, sha256: str) -> dict[str, Any]:
    row = conn.execute(select(Image).where(Image.sha256 == sha256)).scalar_one()
    return {
        "sha256": row.sha256,
        "phash": row.phash,
        "phash_alg": row.phash_alg,
        "width": row.width,
        "height": row.height,
        "format": row.format,
        "byte_size": row.byte_size,
        "decode_ok": row.decode_ok,
        "decode_error": row.decode_error,
        "facts": json.loads(row.facts) if row.facts else {},
        "first_seen_at": row.first_seen_at,
    }


def sightings_of(conn: Session, sha256: str) -> list[Sighting]:
    return list(
        conn.execute(
            select(Sighting)
            .where(Sighting.image_sha256 == sha256)
            .order_by(Sighting.seen_at, Sighting.id)
        ).scalars()
    )


def optouts_of(conn: Session, sha256: str, sighting_ids: list[int]) -> list[dict[str, Any]]:
    cond = OptOutMatch.image_sha256 == sha256
    if sighting_ids:
        cond = cond | OptOutMatch.sighting_id.in_(sighting_ids)
    rows = conn.execute(
        select(OptOutMatch, OptOutRequest)
        .join(OptOutRequest, OptOutRequest.id == OptOutMatch.request_id)
        .where(cond)
        .order_by(OptOutMatch.request_id, OptOutMatch.id)
    ).all()
    return [
        {
            "request_id": req.id,
            "reference": req.reference,
            "requester": req.requester,
            "scope": req.scope_kind,
            "value": req.scope_value,
            "status": req.status,
            "received_at": req.received_at,
            "how": match.how,
            "distance": match.distance,
            "matched_at": match.matched_at,
        }
        for match, req in rows
    ]


def exports_of(conn: Session, sha256: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(ExportMember, Export)
        .join(Export, Export.id == ExportMember.export_id)
        .where(ExportMember.image_sha256 == sha256)
        .order_by(Export.id)
    ).all()
    return [
        {
            "export_id": exp.id,
            "name": exp.name,
            "status": exp.status,
            "created_at": exp.created_at,
            "shard_index": member.shard_index,
            "policy": exp.policy_name,
        }
        for member, exp in rows
    ]
