"""Per-host-bucket advisory locks on PostgreSQL, so that a retried fetch attempt never works
beside a live one on the same hosts (the batch system or Ray may start a second attempt of a
partition while the first is still running, e.g. after a lost heartbeat).

A bucket is claimed with `pg_try_advisory_lock(catalog, bucket)` on a dedicated session:
held by someone else means skipped, never waited for. Locks are taken for at most
`GROUP_BUCKETS` buckets at a time (PostgreSQL's shared lock table is small) and released when
the group is done. After claiming, the caller re-reads which of its rows are still pending, so
work a live attempt finished meanwhile is not done twice. On SQLite there is nothing to claim:
one writer at a time is all it supports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from sqlalchemy import Connection, Engine, bindparam, select, text

from provenance.db.models import Sighting

GROUP_BUCKETS = 512

J = TypeVar("J")

# Advisory locks are database-wide; the namespace names this catalog (database and schema), so
# catalogs sharing one PostgreSQL database never skip each other's buckets.
_NAMESPACE = "hashtext('provenance-fetch:' || current_database() || '.' || current_schema())"
_TRY = text(
    "SELECT b FROM unnest(CAST(:buckets AS int[])) AS b "
    f"WHERE pg_try_advisory_lock({_NAMESPACE}, b)"
)
_UNLOCK = text(
    f"SELECT pg_advisory_unlock({_NAMESPACE}, b) FROM unnest(CAST(:buckets AS int[])) AS b"
)


def still_pending(conn: Connection, sighting_ids: Sequence[int]) -> set[int]:
    """Which of these sightings are still pending (another attempt may have done them)."""
    if not sighting_ids:
        return set()
    stmt = select(Sighting.id).where(
        Sighting.id.in_(bindparam("ids", expanding=True)), Sighting.status == "pending"
    )
    return set(conn.execute(stmt, {"ids": list(sighting_ids)}).scalars())


def claimed_groups(
    engine: Engine,
    jobs: Sequence[J],
    bucket_of: Callable[[J], int | None],
    id_of: Callable[[J], int],
) -> Iterator[list[J]]:
    """The jobs in groups whose host buckets this process holds, locks held while the caller
    works on a group; jobs of buckets held elsewhere (or no longer pending) are left out.
    Jobs without a bucket (unparseable URL) go with the first group, unlocked."""
    if engine.dialect.name != "postgresql":
        yield list(jobs)
        return
    by_bucket: dict[int | None, list[J]] = {}
    for job in jobs:
        by_bucket.setdefault(bucket_of(job), []).append(job)
    loose = by_bucket.pop(None, [])
    buckets = sorted(b for b in by_bucket if b is not None)
    with engine.connect() as session:
        session.commit()  # advisory locks here are session-level, outside any transaction
        for start in range(0, max(len(buckets), 1), GROUP_BUCKETS):
            group = buckets[start : start + GROUP_BUCKETS]
            held = _try_lock(session, group)
            try:
                chosen = loose + [j for b in group if b in held for j in by_bucket[b]]
                loose = []
                pending = still_pending(session, [id_of(j) for j in chosen])
                session.commit()
                yield [j for j in chosen if id_of(j) in pending]
            finally:
                _unlock(session, sorted(held))


def _try_lock(session: Connection, buckets: Iterable[int]) -> set[int]:
    wanted = list(buckets)
    if not wanted:
        return set()
    held = set(session.execute(_TRY, {"buckets": wanted}).scalars())
    session.commit()
    return held


def _unlock(session: Connection, buckets: list[int]) -> None:
    if buckets:
        session.execute(_UNLOCK, {"buckets": buckets})
        session.commit()
