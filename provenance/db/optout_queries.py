"""SQL of opt-out requests and their matches: set-based inserts, candidate joins, reports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, exists, func, literal, null, or_, select, update

from provenance.db.engine import insert_ignore
from provenance.db.models import (
    Export,
    ExportMember,
    ExportShard,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
)

REQUESTS = cast(Table, OptOutRequest.__table__)
MATCHES = cast(Table, OptOutMatch.__table__)
_CHUNK = 500
_URL_KINDS = ("url", "url-prefix")
MATCH_KEY = ("request_id", "image_sha256", "sighting_id")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _new(first_id: int, last_id: int) -> Any:
    """Requests recorded in this unit of work (ids are assigned in one transaction)."""
    return and_(OptOutRequest.id.between(first_id, last_id), OptOutRequest.status == "active")


# --------------------------------------------------------------------------- requests


def insert_requests(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Batched insert; a reference recorded before is left as it is (idempotent)."""
    for chunk in _chunks(rows, 5000):
        insert_ignore(conn, REQUESTS, chunk, index=["reference"])


def ids_by_reference(conn: Connection, references: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(references))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        stmt = select(OptOutRequest.reference, OptOutRequest.id).where(
            OptOutRequest.reference.in_(chunk)
        )
        found.update({ref: rid for ref, rid in conn.execute(stmt) if ref is not None})
    return found


def get_request(conn: Connection, request_id: int) -> Any | None:
    return conn.execute(select(REQUESTS).where(OptOutRequest.id == request_id)).first()


def list_requests(conn: Connection, status: str | None) -> list[Any]:
    """Every request (optionally of one status) with its matched image and sighting counts."""
    counts = (
        select(
            OptOutMatch.request_id.label("rid"),
            func.count(func.distinct(OptOutMatch.image_sha256)).label("images"),
            func.count(func.distinct(OptOutMatch.sighting_id)).label("sightings"),
        )
        .group_by(OptOutMatch.request_id)
        .subquery()
    )
    stmt = (
        select(
            REQUESTS,
            func.coalesce(counts.c.images, 0).label("matched_images"),
            func.coalesce(counts.c.sightings, 0).label("matched_sightings"),
        )
        .outerjoin(counts, counts.c.rid == OptOutRequest.id)
        .order_by(OptOutRequest.id)
    )
    if status:
        stmt = stmt.where(OptOutRequest.status == status)
    return list(conn.execute(stmt))


def withdraw(conn: Connection, request_id: int, now: datetime) -> bool:
    """Mark an active request withdrawn; False when it was not active. Matches stay."""
    result = conn.execute(
        update(OptOutRequest)
        .where(OptOutRequest.id == request_id, OptOutRequest.status == "active")
        .values(status="withdrawn", withdrawn_at=now)
    )
    return bool(result.rowcount)


# --------------------------------------------------------------------------- matches


def insert_matches(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert matches not recorded yet; returns how many were new.

    The unique key contains NULLs (image-level matches have no sighting, pending sightings no
    image), which no backend treats as equal, so existing rows are looked up first."""
    fresh: dict[tuple[Any, ...], dict[str, Any]] = {}
    for chunk in _chunks(rows, 300):
        keys = {tuple(r[k] for k in MATCH_KEY): r for r in chunk}
        rids = sorted({r["request_id"] for r in chunk})
        sids = sorted({r["sighting_id"] for r in chunk if r["sighting_id"] is not None})
        shas = sorted({r["image_sha256"] for r in chunk if r["image_sha256"] is not None})
        stmt = select(
            OptOutMatch.request_id, OptOutMatch.image_sha256, OptOutMatch.sighting_id
        ).where(
            OptOutMatch.request_id.in_(rids),
            or_(OptOutMatch.sighting_id.in_(sids), OptOutMatch.image_sha256.in_(shas)),
        )
        existing = {tuple(row) for row in conn.execute(stmt)}
        fresh.update({k: r for k, r in keys.items() if k not in existing})
    values = list(fresh.values())
    for chunk in _chunks(values, 5000):
        insert_ignore(conn, MATCHES, chunk, index=list(MATCH_KEY))
    return len(values)


def _not_matched_yet(request_id: Any, image_sha: Any, sighting_id: Any) -> Any:
    same_sighting = (
        OptOutMatch.sighting_id.is_(None)
        if sighting_id is None
        else OptOutMatch.sighting_id.is_not_distinct_from(sighting_id)
    )
    return ~exists().where(
        OptOutMatch.request_id == request_id,
        OptOutMatch.image_sha256.is_not_distinct_from(image_sha),
        same_sighting,
    )


def _insert_from(conn: Connection, stmt: Any) -> int:
    columns = ["request_id", "image_sha256", "sighting_id", "how", "distance", "matched_at"]
    insert = MATCHES.insert().from_select(columns, stmt)
    if conn.dialect.name == "sqlite":
        return max(int(conn.execute(insert).rowcount or 0), 0)
    # psycopg reports no rowcount for INSERT ... SELECT through SQLAlchemy: count RETURNING.
    return len(conn.execute(insert.returning(MATCHES.c.id)).all())


def match_new_domains(conn: Connection, first_id: int, last_id: int, now: datetime) -> int:
    """Set-based: every sighting on a new domain request's host or one of its subdomains."""
    escaped = func.replace(
        func.replace(func.replace(OptOutRequest.scope_value, "\\", "\\\\"), "%", "\\%"), "_", "\\_"
    )
    stmt = (
        select(
            OptOutRequest.id,
            Sighting.image_sha256,
            Sighting.id,
            literal("domain"),
            null(),
            literal(now, type_=OptOutMatch.matched_at.type),
        )
        .join(Sighting, Sighting.domain == OptOutRequest.scope_domain)
        .where(
            _new(first_id, last_id),
            OptOutRequest.scope_kind == "domain",
            or_(
                Sighting.host == OptOutRequest.scope_value,
                Sighting.host.like(literal("%.") + escaped, escape="\\"),
            ),
            _not_matched_yet(OptOutRequest.id, Sighting.image_sha256, Sighting.id),
        )
    )
    return _insert_from(conn, stmt)


def match_new_hashes(conn: Connection, first_id: int, last_id: int, now: datetime) -> int:
    """Set-based: catalogued images whose bytes are exactly a new sha256/image request's."""
    stmt = (
        select(
            OptOutRequest.id,
            Image.sha256,
            null(),
            literal("sha256"),
            literal(0),
            literal(now, type_=OptOutMatch.matched_at.type),
        )
        .join(Image, Image.sha256 == OptOutRequest.scope_value)
        .where(
            _new(first_id, last_id),
            OptOutRequest.scope_kind.in_(("sha256", "image")),
            _not_matched_yet(OptOutRequest.id, Image.sha256, None),
        )
    )
    return _insert_from(conn, stmt)


def url_candidates(conn: Connection, first_id: int, last_id: int) -> Iterator[Any]:
    """(request id, kind, value, sighting id, image sha256, url) for new url/url-prefix
    requests and the sightings on the same registrable domain; the caller checks the URL."""
    stmt = (
        select(
            OptOutRequest.id,
            OptOutRequest.scope_kind,
            OptOutRequest.scope_value,
            Sighting.id,
            Sighting.image_sha256,
            Sighting.url,
        )
        .join(Sighting, Sighting.domain == OptOutRequest.scope_domain)
        .where(_new(first_id, last_id), OptOutRequest.scope_kind.in_(_URL_KINDS))
        .order_by(Sighting.id, OptOutRequest.id)
    )
    yield from conn.execute(stmt.execution_options(yield_per=20_000))


def new_requests_of_kind(conn: Connection, first_id: int, last_id: int, kind: str) -> list[Any]:
    stmt = (
        select(
            OptOutRequest.id,
            OptOutRequest.scope_value,
            OptOutRequest.phash,
            OptOutRequest.phash_probes,
            OptOutRequest.max_distance,
        )
        .where(_new(first_id, last_id), OptOutRequest.scope_kind == kind)
        .order_by(OptOutRequest.id)
    )
    return list(conn.execute(stmt))


def images_naming_creators(
    conn: Connection, facts: Sequence[str], shas: Sequence[str] | None = None
) -> Iterator[Any]:
    """(sha256, facts JSON) of the images whose facts hold any of the `facts` keys (a cheap
    text pre-filter: the caller parses and checks), of the whole catalog or of `shas`."""
    wanted = or_(*(Image.facts.contains(f'"{name}":') for name in facts))
    stmt = select(Image.sha256, Image.facts).where(Image.facts.is_not(None), wanted)
    if shas is None:
        yield from conn.execute(stmt.order_by(Image.sha256).execution_options(yield_per=20_000))
        return
    for chunk in _chunks(sorted(shas), 500):
        yield from conn.execute(stmt.where(Image.sha256.in_(chunk)).order_by(Image.sha256))


def sightings_with_creator(conn: Connection) -> Iterator[Any]:
    """(sighting id, image sha256, creator) of every sighting that names a creator."""
    stmt = (
        select(Sighting.id, Sighting.image_sha256, Sighting.creator)
        .where(Sighting.creator.is_not(None))
        .order_by(Sighting.id)
    )
    yield from conn.execute(stmt.execution_options(yield_per=20_000))


def catalog_phashes(conn: Connection) -> Iterator[tuple[str, str]]:
    """(sha256, pHash) of every image that has one, in sha256 order."""
    stmt = select(Image.sha256, Image.phash).where(Image.phash.is_not(None)).order_by(Image.sha256)
    for sha, phash in conn.execute(stmt.execution_options(yield_per=50_000)):
        if phash is not None:
            yield sha, phash


# --------------------------------------------------------------------------- standing rules


def any_active_request(conn: Connection) -> bool:
    """Whether any request is active (standing rules cost nothing on a catalog without any)."""
    stmt = select(OptOutRequest.id).where(OptOutRequest.status == "active").limit(1)
    return conn.execute(stmt).first() is not None


def active_requests(conn: Connection, kinds: Sequence[str], values: Iterable[str]) -> list[Any]:
    """(id, kind, value) of active requests of these kinds whose scope value is one of these."""
    wanted = sorted(set(values))
    out: list[Any] = []
    for chunk in _chunks(wanted):
        stmt = select(OptOutRequest.id, OptOutRequest.scope_kind, OptOutRequest.scope_value).where(
            OptOutRequest.status == "active",
            OptOutRequest.scope_kind.in_(kinds),
            OptOutRequest.scope_value.in_(chunk),
        )
        out.extend(conn.execute(stmt))
    return out


def active_url_requests(conn: Connection, domains: Iterable[str]) -> list[Any]:
    """(id, kind, value, domain) of active url/url-prefix requests on these registrable domains."""
    wanted = sorted(set(domains))
    out: list[Any] = []
    for chunk in _chunks(wanted):
        stmt = select(
            OptOutRequest.id,
            OptOutRequest.scope_kind,
            OptOutRequest.scope_value,
            OptOutRequest.scope_domain,
        ).where(
            OptOutRequest.status == "active",
            OptOutRequest.scope_kind.in_(_URL_KINDS),
            OptOutRequest.scope_domain.in_(chunk),
        )
        out.extend(conn.execute(stmt))
    return out


def active_image_requests(conn: Connection) -> list[Any]:
    """(id, phash, phash_probes, max_distance) of every active image request."""
    stmt = (
        select(
            OptOutRequest.id,
            OptOutRequest.phash,
            OptOutRequest.phash_probes,
            OptOutRequest.max_distance,
        )
        .where(OptOutRequest.status == "active", OptOutRequest.scope_kind == "image")
        .order_by(OptOutRequest.id)
    )
    return list(conn.execute(stmt))


def active_creator_requests(conn: Connection) -> list[Any]:
    """(id, creator key) of every active creator request."""
    stmt = (
        select(OptOutRequest.id, OptOutRequest.scope_value)
        .where(OptOutRequest.status == "active", OptOutRequest.scope_kind == "creator")
        .order_by(OptOutRequest.id)
    )
    return list(conn.execute(stmt))


def image_phashes(conn: Connection, shas: Iterable[str]) -> list[tuple[str, str]]:
    wanted = sorted(set(shas))
    out: list[tuple[str, str]] = []
    for chunk in _chunks(wanted):
        stmt = select(Image.sha256, Image.phash).where(
            Image.sha256.in_(chunk), Image.phash.is_not(None)
        )
        out.extend((sha, ph) for sha, ph in conn.execute(stmt) if ph is not None)
    return sorted(out)


def sightings_by_id(conn: Connection, ids: Iterable[int]) -> list[Any]:
    """(id, image sha256, url, host, domain, creator) of these sightings."""
    wanted = sorted(set(ids))
    out: list[Any] = []
    for chunk in _chunks(wanted):
        stmt = select(
            Sighting.id,
            Sighting.image_sha256,
            Sighting.url,
            Sighting.host,
            Sighting.domain,
            Sighting.creator,
        ).where(Sighting.id.in_(chunk))
        out.extend(conn.execute(stmt))
    return out


# --------------------------------------------------------------------------- reports


def matched_images(conn: Connection, request_id: int, limit: int) -> list[Any]:
    """(sha256, how, distance, sightings) per matched image: nearest first, then by sha256."""
    stmt = (
        select(
            OptOutMatch.image_sha256,
            func.min(OptOutMatch.how).label("how"),
            func.min(OptOutMatch.distance).label("distance"),
            func.count(OptOutMatch.sighting_id).label("sightings"),
        )
        .where(OptOutMatch.request_id == request_id, OptOutMatch.image_sha256.is_not(None))
        .group_by(OptOutMatch.image_sha256)
        .order_by(func.coalesce(func.min(OptOutMatch.distance), 0), OptOutMatch.image_sha256)
        .limit(limit)
    )
    return list(conn.execute(stmt))


def match_counts(conn: Connection, request_id: int) -> tuple[int, int]:
    """(distinct images, distinct sightings) a request matched."""
    stmt = select(
        func.count(func.distinct(OptOutMatch.image_sha256)),
        func.count(func.distinct(OptOutMatch.sighting_id)),
    ).where(OptOutMatch.request_id == request_id)
    images, sightings = conn.execute(stmt).one()
    return int(images), int(sightings)


def affected_shards(conn: Connection, request_id: int) -> list[Any]:
    """Per export and shard: how many of the request's matched images it holds."""
    matched = (
        select(OptOutMatch.image_sha256)
        .where(OptOutMatch.request_id == request_id, OptOutMatch.image_sha256.is_not(None))
        .distinct()
        .subquery()
    )
    stmt = (
        select(
            Export.id,
            Export.name,
            Export.created_at,
            Export.out_dir,
            ExportMember.shard_index,
            ExportShard.path,
            func.count().label("samples"),
        )
        .join(ExportMember, ExportMember.export_id == Export.id)
        .join(matched, matched.c.image_sha256 == ExportMember.image_sha256)
        .outerjoin(
            ExportShard,
            and_(
                ExportShard.export_id == Export.id,
                ExportShard.shard_index == ExportMember.shard_index,
            ),
        )
        .group_by(
            Export.id,
            Export.name,
            Export.created_at,
            Export.out_dir,
            ExportMember.shard_index,
            ExportShard.path,
        )
        .order_by(Export.id, ExportMember.shard_index)
    )
    return list(conn.execute(stmt))
