"""Reads and writes of the `events` table (the hash-chained log). Explicit ORDER BY seq."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from provenance.db.models import Base

EVENTS = Base.metadata.tables["events"]
# Any constant will do; it only has to be the same in every writer of this catalog.
EVENTS_LOCK_KEY = 0x70726F76  # "prov"


@dataclass(frozen=True)
class EventRow:
    """One stored event, exactly as read back (payload is the stored canonical JSON text)."""

    seq: int
    occurred_at: datetime
    kind: str
    payload: str
    prev_hash: str
    hash: str


def lock_chain(conn: Connection) -> None:
    """Serialize appenders until the end of the caller's transaction.

    PostgreSQL: a transaction-level advisory lock. SQLite: a write that changes nothing still
    takes the database write lock (pysqlite begins the transaction before any DML), so the
    read of the chain head that follows cannot be overtaken by another writer."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(EVENTS_LOCK_KEY)))
    else:
        conn.execute(update(EVENTS).where(EVENTS.c.seq < 0).values(kind=EVENTS.c.kind))


def chain_head(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) of the last event, or None for an empty log."""
    row = conn.execute(
        select(EVENTS.c.seq, EVENTS.c.hash).order_by(EVENTS.c.seq.desc()).limit(1)
    ).first()
    return (int(row.seq), str(row.hash)) if row else None


def insert_event(conn: Connection, row: EventRow) -> None:
    """Insert one event row (no conflict handling: a clash means the lock was bypassed)."""
    conn.execute(
        EVENTS.insert().values(
            seq=row.seq,
            occurred_at=row.occurred_at,
            kind=row.kind,
            payload=row.payload,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )
    )


def _row(r: Any) -> EventRow:
    return EventRow(int(r.seq), r.occurred_at, r.kind, r.payload, r.prev_hash, r.hash)


def iter_events(conn: Connection) -> Iterator[EventRow]:
    """Every event in seq order, streamed."""
    result = conn.execute(
        select(EVENTS).order_by(EVENTS.c.seq).execution_options(stream_results=True)
    )
    for r in result:
        yield _row(r)


def recent_events(conn: Connection, limit: int, kind: str | None = None) -> list[EventRow]:
    """The last `limit` events (optionally of one kind), oldest first."""
    query = select(EVENTS)
    if kind is not None:
        query = query.where(EVENTS.c.kind == kind)
    rows = conn.execute(query.order_by(EVENTS.c.seq.desc()).limit(limit)).all()
    return [_row(r) for r in reversed(rows)]
