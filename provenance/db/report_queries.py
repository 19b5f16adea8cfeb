"""Aggregate queries behind `provenance report`: GROUP BY in the database, explicit ORDER BY.

`scope` arguments restrict to the images of one export (`export_id`) or, when None, cover the
whole catalog. `as_of` ignores what was recorded after that time where the data has a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    distinct,
    func,
    literal,
    or_,
    select,
)

from provenance.db.models import Base

IMAGES = Base.metadata.tables["images"]
SIGHTINGS = Base.metadata.tables["sightings"]
SIGNALS = Base.metadata.tables["signals"]
REQUESTS = Base.metadata.tables["optout_requests"]
MATCHES = Base.metadata.tables["optout_matches"]
EXPORTS = Base.metadata.tables["exports"]
SHARDS = Base.metadata.tables["export_shards"]
MEMBERS = Base.metadata.tables["export_members"]

PIXEL_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 0.25 MP", 250_000), ("0.25-1 MP", 1_000_000), ("1-4 MP", 4_000_000),
    ("4-16 MP", 16_000_000), (">= 16 MP", None))
BYTE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("< 50 KB", 50_000), ("50-200 KB", 200_000), ("200 KB-1 MB", 1_000_000),
    ("1-5 MB", 5_000_000), (">= 5 MB", None))


def _in_scope(column: Any, export_id: int | None) -> ColumnElement[bool]:
    if export_id is None:
        return literal(True)
    return column.in_(select(MEMBERS.c.image_sha256).where(MEMBERS.c.export_id == export_id))


def _seen_by(as_of: datetime | None) -> ColumnElement[bool]:
    return literal(True) if as_of is None else SIGHTINGS.c.seen_at <= as_of


def license_variants(conn: Connection, export_id: int | None, as_of: datetime | None
                     ) -> list[Any]:
    """(license_spdx, license_raw, sightings, images) for every pair seen, most used first."""
    sightings = func.count().label("sightings")
    images = func.count(distinct(SIGHTINGS.c.image_sha256)).label("images")
    query = (
        select(SIGHTINGS.c.license_spdx, SIGHTINGS.c.license_raw, sightings, images)
        .where(_in_scope(SIGHTINGS.c.image_sha256, export_id), _seen_by(as_of))
        .group_by(SIGHTINGS.c.license_spdx, SIGHTINGS.c.license_raw)
        .order_by(sightings.desc(), SIGHTINGS.c.license_spdx.asc().nulls_last(),
                  SIGHTINGS.c.license_raw.asc().nulls_last())
    )
    return list(conn.execute(query))


def images_by_license(conn: Connection, export_id: int | None, as_of: datetime | None
                      ) -> list[Any]:
    """(license_spdx, images): distinct images per SPDX id (None: no or unrecognized text)."""
    images = func.count(distinct(SIGHTINGS.c.image_sha256)).label("images")
    query = (
        select(SIGHTINGS.c.license_spdx, images)
        .where(SIGHTINGS.c.image_sha256.is_not(None),
               _in_scope(SIGHTINGS.c.image_sha256, export_id), _seen_by(as_of))
        .group_by(SIGHTINGS.c.license_spdx)
        .order_by(images.desc(), SIGHTINGS.c.license_spdx.asc().nulls_last())
    )
    return list(conn.execute(query))


def domain_counts(conn: Connection, export_id: int | None, as_of: datetime | None,
                  limit: int | None = None) -> list[Any]:
    """(domain, images, sightings) per registrable domain, most images first, then by name."""
    images = func.count(distinct(SIGHTINGS.c.image_sha256)).label("images")
    sightings = func.count().label("sightings")
    query = (
        select(SIGHTINGS.c.domain, images, sightings)
        .where(_in_scope(SIGHTINGS.c.image_sha256, export_id), _seen_by(as_of))
        .group_by(SIGHTINGS.c.domain)
        .order_by(images.desc(), sightings.desc(), SIGHTINGS.c.domain.asc().nulls_last())
    )
    return list(conn.execute(query.limit(limit) if limit else query))


def _latest_signals(as_of: datetime | None) -> Any:
    rank = func.row_number().over(
        partition_by=(SIGNALS.c.scope, SIGNALS.c.subject, SIGNALS.c.kind),
        order_by=(SIGNALS.c.observed_at.desc(), SIGNALS.c.id.desc()),
    ).label("rank")
    query = select(SIGNALS.c.scope, SIGNALS.c.kind, SIGNALS.c.status, rank)
    if as_of is not None:
        query = query.where(SIGNALS.c.observed_at <= as_of)
    return query.subquery()


def signal_status_counts(conn: Connection, as_of: datetime | None) -> list[Any]:
    """(scope, kind, status, subjects): the latest observation per subject and kind."""
    latest = _latest_signals(as_of)
    subjects = func.count().label("subjects")
    query = (
        select(latest.c.scope, latest.c.kind, latest.c.status, subjects)
        .where(latest.c.rank == 1)
        .group_by(latest.c.scope, latest.c.kind, latest.c.status)
        .order_by(latest.c.scope, latest.c.kind, latest.c.status)
    )
    return list(conn.execute(query))


def signal_observation_counts(conn: Connection, as_of: datetime | None) -> list[Any]:
    """(kind, status, observations): every observation ever recorded (history included)."""
    count = func.count().label("observations")
    query = select(SIGNALS.c.kind, SIGNALS.c.status, count)
    if as_of is not None:
        query = query.where(SIGNALS.c.observed_at <= as_of)
    return list(conn.execute(
        query.group_by(SIGNALS.c.kind, SIGNALS.c.status).order_by(SIGNALS.c.kind,
                                                                  SIGNALS.c.status)))


def host_histories(conn: Connection, as_of: datetime | None) -> Iterator[Any]:
    """(subject, kind, status, observed_at) of hosts with more than one status, in time order."""
    changed = (
        select(SIGNALS.c.subject, SIGNALS.c.kind)
        .where(SIGNALS.c.scope == "host",
               literal(True) if as_of is None else SIGNALS.c.observed_at <= as_of)
        .group_by(SIGNALS.c.subject, SIGNALS.c.kind)
        .having(func.count(distinct(SIGNALS.c.status)) > 1)
        .subquery()
    )
    query = (
        select(SIGNALS.c.subject, SIGNALS.c.kind, SIGNALS.c.status, SIGNALS.c.observed_at)
        .join(changed, and_(changed.c.subject == SIGNALS.c.subject,
                            changed.c.kind == SIGNALS.c.kind))
        .where(SIGNALS.c.scope == "host",
               literal(True) if as_of is None else SIGNALS.c.observed_at <= as_of)
        .order_by(SIGNALS.c.subject, SIGNALS.c.kind, SIGNALS.c.observed_at, SIGNALS.c.id)
    )
    yield from conn.execute(query)


def optout_register(conn: Connection, as_of: datetime | None) -> list[Any]:
    """Every request (received by `as_of`) with what it matched and which exports hold it."""
    image = func.coalesce(MATCHES.c.image_sha256, SIGHTINGS.c.image_sha256)
    matched_by = literal(True) if as_of is None else MATCHES.c.matched_at <= as_of
    matched = (
        select(MATCHES.c.request_id,
               func.count(distinct(image)).label("images"),
               func.count(distinct(MATCHES.c.sighting_id)).label("sightings"),
               func.min(MATCHES.c.matched_at).label("first_matched_at"))
        .select_from(MATCHES.outerjoin(SIGHTINGS, SIGHTINGS.c.id == MATCHES.c.sighting_id))
        .where(matched_by)
        .group_by(MATCHES.c.request_id)
        .subquery()
    )
    exported = (
        select(MATCHES.c.request_id,
               func.count(distinct(MEMBERS.c.export_id)).label("exports"),
               func.count(distinct(MEMBERS.c.image_sha256)).label("exported_images"))
        .select_from(MATCHES.outerjoin(SIGHTINGS, SIGHTINGS.c.id == MATCHES.c.sighting_id)
                     .join(MEMBERS, MEMBERS.c.image_sha256 == image)
                     .join(EXPORTS, EXPORTS.c.id == MEMBERS.c.export_id))
        .where(matched_by,
               literal(True) if as_of is None else EXPORTS.c.created_at <= as_of)
        .group_by(MATCHES.c.request_id)
        .subquery()
    )
    query = (
        select(REQUESTS, func.coalesce(matched.c.images, 0).label("images"),
               func.coalesce(matched.c.sightings, 0).label("sightings"),
               matched.c.first_matched_at,
               func.coalesce(exported.c.exports, 0).label("exports"),
               func.coalesce(exported.c.exported_images, 0).label("exported_images"))
        .outerjoin(matched, matched.c.request_id == REQUESTS.c.id)
        .outerjoin(exported, exported.c.request_id == REQUESTS.c.id)
        .order_by(REQUESTS.c.received_at, REQUESTS.c.id)
    )
    if as_of is not None:
        query = query.where(REQUESTS.c.recorded_at <= as_of)
    return list(conn.execute(query))


def export_rows(conn: Connection, export_id: int | None) -> list[Any]:
    """Exports with their shard and member counts, oldest first."""
    shards = (select(SHARDS.c.export_id, func.count().label("shards"))
              .group_by(SHARDS.c.export_id).subquery())
    members = (select(MEMBERS.c.export_id, func.count().label("members"))
               .group_by(MEMBERS.c.export_id).subquery())
    query = (
        select(EXPORTS, func.coalesce(shards.c.shards, 0).label("shards"),
               func.coalesce(members.c.members, 0).label("members"))
        .outerjoin(shards, shards.c.export_id == EXPORTS.c.id)
        .outerjoin(members, members.c.export_id == EXPORTS.c.id)
        .order_by(EXPORTS.c.id)
    )
    if export_id is not None:
        query = query.where(EXPORTS.c.id == export_id)
    return list(conn.execute(query))


def _images_query(export_id: int | None, as_of: datetime | None) -> Select[Any]:
    query = select(IMAGES).where(_in_scope(IMAGES.c.sha256, export_id))
    if as_of is not None:
        query = query.where(IMAGES.c.first_seen_at <= as_of)
    return query


def _bucket(expr: Any, buckets: tuple[tuple[str, int | None], ...]) -> Any:
    whens = [(expr < bound, literal(label)) for label, bound in buckets if bound is not None]
    return case(*whens, else_=literal(buckets[-1][0]))


def image_totals(conn: Connection, export_id: int | None, as_of: datetime | None) -> Any:
    """(images, bytes) of the scope."""
    scoped = _images_query(export_id, as_of).subquery()
    return conn.execute(select(func.count().label("images"),
                               func.coalesce(func.sum(scoped.c.byte_size), 0).label("bytes"))
                        ).one()


def image_facets(conn: Connection, export_id: int | None, as_of: datetime | None
                 ) -> dict[str, list[Any]]:
    """Counts of images per format, pixel-size bucket and byte-size bucket."""
    scoped = _images_query(export_id, as_of).subquery()
    pixels = scoped.c.width * scoped.c.height
    facets = {
        "formats": func.coalesce(func.lower(scoped.c.format), literal("(unknown)")),
        "pixels": case((or_(scoped.c.width.is_(None), scoped.c.height.is_(None)),
                        literal("(unknown)")), else_=_bucket(pixels, PIXEL_BUCKETS)),
        "bytes": _bucket(scoped.c.byte_size, BYTE_BUCKETS),
    }
    out: dict[str, list[Any]] = {}
    for name, expr in facets.items():
        label = expr.label("value")
        count = func.count().label("images")
        out[name] = list(conn.execute(
            select(label, count).group_by(label).order_by(count.desc(), label)))
    return out


def sighting_facet(conn: Connection, column: str, export_id: int | None,
                   as_of: datetime | None) -> list[Any]:
    """(value, images) per value of a sightings column, over sightings with bytes."""
    col = SIGHTINGS.c[column]
    images = func.count(distinct(SIGHTINGS.c.image_sha256)).label("images")
    query = (
        select(col.label("value"), images)
        .where(SIGHTINGS.c.image_sha256.is_not(None),
               _in_scope(SIGHTINGS.c.image_sha256, export_id), _seen_by(as_of))
        .group_by(col)
        .order_by(images.desc(), col.asc().nulls_last())
    )
    return list(conn.execute(query))


def captioned_images(conn: Connection, export_id: int | None, as_of: datetime | None) -> int:
    """Images with at least one non-empty caption."""
    query = select(func.count(distinct(SIGHTINGS.c.image_sha256))).where(
        SIGHTINGS.c.image_sha256.is_not(None), SIGHTINGS.c.caption.is_not(None),
        func.length(func.trim(SIGHTINGS.c.caption)) > 0,
        _in_scope(SIGHTINGS.c.image_sha256, export_id), _seen_by(as_of))
    return int(conn.execute(query).scalar_one())


def tag_lists(conn: Connection, export_id: int | None, as_of: datetime | None
              ) -> Iterator[tuple[str, str]]:
    """(image_sha256, tags JSON) of sightings with tags (tags are counted in Python: JSON)."""
    query = (
        select(SIGHTINGS.c.image_sha256, SIGHTINGS.c.tags)
        .where(SIGHTINGS.c.image_sha256.is_not(None), SIGHTINGS.c.tags.is_not(None),
               _in_scope(SIGHTINGS.c.image_sha256, export_id), _seen_by(as_of))
        .order_by(SIGHTINGS.c.id)
        .execution_options(stream_results=True)
    )
    for row in conn.execute(query):
        yield str(row.image_sha256), str(row.tags)
