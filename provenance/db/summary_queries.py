"""Aggregate SQL behind the training-content summary: every figure is computed by the database
over exactly the images of the given exports (export_members), one statement per figure and
no per-image round trip, so a million-image export takes seconds."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Subquery,
    Table,
    and_,
    case,
    distinct,
    func,
    literal,
    or_,
    select,
)

from provenance.db.models import (
    Blocklist,
    Event,
    Export,
    ExportMember,
    FetchAttempt,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
    SignalObservation,
)

# Sighting statuses whose bytes we hold (the policy layer's COUNTED_STATUSES).
COUNTED = ("ok", "fetched")
FETCHED = "fetched"
SUMMARY_EVENT = "training-summary"
SIGHTINGS = cast(Table, Sighting.__table__)


@dataclass(frozen=True)
class ExportRow:
    id: int
    name: str
    status: str
    policy_name: str
    policy_sha256: str
    policy_text: str
    included: int | None
    excluded: dict[str, int]
    created_at: datetime


@dataclass(frozen=True)
class SummaryFacts:
    """Everything the summary computes from the catalog (counts are distinct images)."""

    exports: tuple[ExportRow, ...]
    images: int
    total_bytes: int
    with_caption: int
    latest_acquired: datetime | None
    sources: tuple[tuple[str | None, int, datetime | None, datetime | None], ...]
    domains: tuple[tuple[str, int, int], ...]  # (domain, images, bytes), ranked by bytes
    crawled_images: int
    crawlers: tuple[tuple[str | None, int, datetime | None, datetime | None], ...]
    licenses: tuple[tuple[str | None, int], ...]
    blocklists: tuple[tuple[str, str, str | None, datetime, int], ...]
    optout_requests: tuple[tuple[str, str, int], ...]  # (scope kind, status, requests)
    optout_matched_now: int  # images of these exports matched by an active opt-out today
    fetch_outcomes: tuple[tuple[str, int], ...]
    signal_checks: tuple[tuple[str, str, int], ...]  # (kind, status, observations)


def load_exports(conn: Connection, ids: Sequence[int]) -> tuple[ExportRow, ...]:
    """The export rows, in id order; missing ids are left out (the caller names them)."""
    rows = conn.execute(
        select(Export.__table__).where(Export.id.in_(ids)).order_by(Export.id)
    ).all()
    return tuple(
        ExportRow(e.id, e.name, e.status, e.policy_name, e.policy_sha256, e.policy_text,
                  e.included, json.loads(e.excluded) if e.excluded else {}, e.created_at)
        for e in rows
    )


def _members(ids: Sequence[int]) -> Subquery:
    query = select(ExportMember.image_sha256.label("sha")).where(ExportMember.export_id.in_(ids))
    # One export's members are unique by primary key; several may share images.
    return (query.distinct() if len(ids) > 1 else query).subquery("members")


def _crawled(s: Any, crawl_sources: Collection[str]) -> ColumnElement[bool]:
    fetched = s.c.fetched_at.is_not(None)
    if not crawl_sources:
        return fetched
    return or_(fetched, s.c.source_name.in_(sorted(crawl_sources)))


def _rows_table() -> Table:
    # One row per (member image, counted sighting); images without one keep a row of NULLs.
    return Table(
        "summary_rows", MetaData(),
        Column("sha", String(64)), Column("byte_size", BigInteger),
        Column("source_name", String(200)), Column("domain", String(255)),
        Column("crawled", Integer), Column("captioned", Integer),
        Column("seen_at", DateTime), Column("acquired", DateTime),
        Column("license_spdx", String(64)),
        prefixes=["TEMPORARY"],
    )


def _materialize(conn: Connection, ids: Sequence[int], crawl_sources: Collection[str]) -> Table:
    """The one join of members, sightings and images that every figure aggregates over."""
    m = _members(ids)
    s = SIGHTINGS.alias("s")
    has_caption = and_(s.c.caption.is_not(None), func.length(func.trim(s.c.caption)) > 0)
    if conn.dialect.name == "sqlite":
        # The aggregates sort a row per sighting; on disk those sorts cost ~10-20 % more.
        conn.exec_driver_sql("PRAGMA temp_store=MEMORY")
    rows = _rows_table()
    rows.create(conn)
    conn.execute(rows.insert().from_select(
        [c.name for c in rows.columns],
        select(m.c.sha, Image.byte_size, s.c.source_name, s.c.domain,
               case((_crawled(s, crawl_sources), 1), else_=0),
               case((has_caption, 1), else_=0),
               s.c.seen_at, func.coalesce(s.c.fetched_at, s.c.seen_at), s.c.license_spdx)
        .select_from(m.join(Image, Image.sha256 == m.c.sha)
                     .outerjoin(s, and_(s.c.image_sha256 == m.c.sha, s.c.status.in_(COUNTED))))
    ))
    return rows


def load_facts(conn: Connection, exports: tuple[ExportRow, ...],
               crawl_sources: Collection[str]) -> SummaryFacts:
    """Aggregate every computed field of the summary over the exports' images."""
    ids = [e.id for e in exports]
    as_of = max(e.created_at for e in exports)
    r = _materialize(conn, ids, crawl_sources)
    try:
        per_image = select(r.c.sha, func.max(r.c.byte_size).label("b")).group_by(r.c.sha)
        sized = per_image.subquery("sized")
        images, total_bytes = conn.execute(
            select(func.count(), func.coalesce(func.sum(sized.c.b), 0))).one()
        with_caption, latest = conn.execute(
            select(func.count(distinct(case((r.c.captioned == 1, r.c.sha)))),
                   func.max(r.c.acquired))).one()
        sighted = r.c.seen_at.is_not(None)
        sources = conn.execute(
            select(r.c.source_name, func.count(distinct(r.c.sha)), func.min(r.c.seen_at),
                   func.max(r.c.acquired))
            .where(sighted).group_by(r.c.source_name).order_by(r.c.source_name)).all()
        licenses = conn.execute(
            select(r.c.license_spdx, func.count(distinct(r.c.sha)))
            .where(sighted).group_by(r.c.license_spdx).order_by(r.c.license_spdx)).all()
        domains, crawled = _domains(conn, r)
        m = _members(ids)
        return SummaryFacts(
            exports=exports,
            images=int(images),
            total_bytes=int(total_bytes),
            with_caption=int(with_caption),
            latest_acquired=_aware(latest),
            sources=tuple((x[0], int(x[1]), _aware(x[2]), _aware(x[3])) for x in sources),
            domains=domains,
            crawled_images=crawled,
            crawlers=_crawlers(conn, m),
            licenses=tuple((spdx, int(n)) for spdx, n in licenses),
            blocklists=_blocklists(conn, as_of),
            optout_requests=_optout_requests(conn, as_of),
            optout_matched_now=_optout_matched(conn, m),
            fetch_outcomes=_fetch_outcomes(conn, as_of),
            signal_checks=_signal_checks(conn, as_of),
        )
    finally:
        r.drop(conn)


def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite returns text, naive values are UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _domains(conn: Connection, r: Table) -> tuple[tuple[tuple[str, int, int], ...], int]:
    pairs = (
        select(r.c.domain, r.c.sha, r.c.byte_size).distinct()
        .where(r.c.crawled == 1, r.c.domain.is_not(None))
        .subquery("pairs")
    )
    size = func.sum(pairs.c.byte_size)
    rows = conn.execute(
        select(pairs.c.domain, func.count(), size)
        .group_by(pairs.c.domain)
        .order_by(size.desc(), pairs.c.domain)
    ).all()
    crawled = conn.execute(
        select(func.count(distinct(r.c.sha))).where(r.c.crawled == 1, r.c.domain.is_not(None))
    ).scalar_one()
    return tuple((d, int(n), int(b)) for d, n, b in rows), int(crawled)


def _crawlers(conn: Connection, m: Subquery) -> tuple[tuple[str | None, int, datetime | None,
                                                             datetime | None], ...]:
    fa = FetchAttempt
    rows = conn.execute(
        select(fa.user_agent, func.count(distinct(fa.image_sha256)),
               func.min(fa.attempted_at), func.max(fa.attempted_at))
        .select_from(m.join(fa, fa.image_sha256 == m.c.sha))
        .where(fa.outcome == FETCHED)
        .group_by(fa.user_agent).order_by(fa.user_agent)
    ).all()
    return tuple((ua, int(n), _aware(lo), _aware(hi)) for ua, n, lo, hi in rows)


def _blocklists(conn: Connection,
                as_of: datetime) -> tuple[tuple[str, str, str | None, datetime, int], ...]:
    rows = conn.execute(
        select(Blocklist.name, Blocklist.version, Blocklist.source, Blocklist.imported_at,
               Blocklist.entries)
        .where(Blocklist.imported_at <= as_of).order_by(Blocklist.name, Blocklist.id)
    ).all()
    return tuple((n, v, src, at, int(e)) for n, v, src, at, e in rows)


def _optout_requests(conn: Connection, as_of: datetime) -> tuple[tuple[str, str, int], ...]:
    r = OptOutRequest
    rows = conn.execute(
        select(r.scope_kind, r.status, func.count())
        .where(r.recorded_at <= as_of)
        .group_by(r.scope_kind, r.status).order_by(r.scope_kind, r.status)
    ).all()
    return tuple((k, st, int(n)) for k, st, n in rows)


def _optout_matched(conn: Connection, m: Subquery) -> int:
    hit = (
        select(literal(1)).select_from(OptOutMatch)
        .join(OptOutRequest, OptOutRequest.id == OptOutMatch.request_id)
        .where(OptOutMatch.image_sha256 == m.c.sha, OptOutRequest.status == "active")
        .exists()
    )
    return int(conn.execute(select(func.count()).select_from(m).where(hit)).scalar_one())


def _fetch_outcomes(conn: Connection, as_of: datetime) -> tuple[tuple[str, int], ...]:
    fa = FetchAttempt
    rows = conn.execute(
        select(fa.outcome, func.count(distinct(fa.url)))
        .where(fa.attempted_at <= as_of).group_by(fa.outcome).order_by(fa.outcome)
    ).all()
    return tuple((o, int(n)) for o, n in rows)


def _signal_checks(conn: Connection, as_of: datetime) -> tuple[tuple[str, str, int], ...]:
    sig = SignalObservation
    rows = conn.execute(
        select(sig.kind, sig.status, func.count())
        .where(sig.observed_at <= as_of)
        .group_by(sig.kind, sig.status).order_by(sig.kind, sig.status)
    ).all()
    return tuple((k, st, int(n)) for k, st, n in rows)


def summary_events(conn: Connection) -> list[dict[str, Any]]:
    """Payloads of recorded summary generations, oldest first."""
    rows = conn.execute(
        select(Event.seq, Event.payload).where(Event.kind == SUMMARY_EVENT).order_by(Event.seq)
    ).all()
    return [{"seq": seq, **json.loads(payload)} for seq, payload in rows]

