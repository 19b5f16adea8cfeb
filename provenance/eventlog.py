"""The append-only, hash-chained event log.

Every event stores the hash of the one before it; its own hash is
`sha256(prev_hash + canonical JSON of {"seq", "kind", "occurred_at", "payload"})`, so editing,
deleting or reordering rows breaks the chain at a place `verify_chain` can name. Canonical JSON:
sorted keys, no insignificant whitespace, UTF-8. The first event's `prev_hash` is 64 zeros.

`append_event` runs inside the caller's transaction, so an event commits or rolls back with the
work it describes; `event_queries.lock_chain` keeps concurrent writers from forking the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from provenance.db import event_queries as q
from provenance.domain import iso

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, compact separators, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def event_hash(prev_hash: str, seq: int, kind: str, occurred_at: datetime, payload: Any) -> str:
    """The chain hash of one event from its predecessor's hash and its own contents."""
    envelope = {"seq": seq, "kind": kind, "occurred_at": iso(occurred_at), "payload": payload}
    material = prev_hash + canonical_json(envelope)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Event:
    """One event of the log, payload decoded."""

    seq: int
    occurred_at: datetime
    kind: str
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "occurred_at": iso(self.occurred_at),
            "kind": self.kind,
            "payload": dict(self.payload),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def append_event(
    conn: Connection, kind: str, payload: Mapping[str, Any], now: datetime
) -> Event:
    """Append one event inside the caller's transaction and return it."""
    # Round-trip through canonical JSON so what is hashed is exactly what is stored and read.
    text = canonical_json(dict(payload))
    stored_payload = json.loads(text)
    q.lock_chain(conn)
    head = q.chain_head(conn)
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    digest = event_hash(prev, seq, kind, now, stored_payload)
    q.insert_event(conn, q.EventRow(seq, now, kind, text, prev, digest))
    return Event(seq, now, kind, stored_payload, prev, digest)


@dataclass(frozen=True)
class Problem:
    """Where the chain breaks and what is wrong there."""

    seq: int
    problem: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "problem": self.problem}


@dataclass(frozen=True)
class Verification:
    """The result of walking the whole chain."""

    events: int
    head_seq: int | None
    head_hash: str | None
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """The `log verify --json` document."""
        return {
            "ok": self.ok,
            "events": self.events,
            "head": None
            if self.head_seq is None
            else {"seq": self.head_seq, "hash": self.head_hash},
            "first_broken_seq": self.problems[0].seq if self.problems else None,
            "problems": [p.to_json() for p in self.problems],
        }


def _row_problems(row: q.EventRow, expected_seq: int, prev_hash: str) -> list[Problem]:
    found: list[Problem] = []
    if row.seq != expected_seq:
        missing = f"{expected_seq}" if row.seq == expected_seq + 1 else (
            f"{expected_seq}..{row.seq - 1}")
        what = "missing (deleted)" if row.seq > expected_seq else "out of order"
        found.append(Problem(row.seq, f"event(s) {missing} {what} before this one"))
    if row.prev_hash != prev_hash:
        found.append(Problem(row.seq, "prev_hash does not match the previous event's hash "
                                      "(an event before it was deleted, edited or reordered)"))
    try:
        payload = json.loads(row.payload)
    except ValueError:
        return [*found, Problem(row.seq, "payload is not valid JSON (edited)")]
    if event_hash(row.prev_hash, row.seq, row.kind, row.occurred_at, payload) != row.hash:
        found.append(Problem(row.seq, "hash does not match the event's contents "
                                      "(seq, kind, time or payload edited, or rows swapped)"))
    return found


def verify_rows(rows: Iterable[q.EventRow]) -> Verification:
    """Walk rows in seq order and report every place the chain breaks."""
    problems: list[Problem] = []
    expected, prev = 1, GENESIS_HASH
    count = 0
    last: q.EventRow | None = None
    for row in rows:
        count += 1
        problems.extend(_row_problems(row, expected, prev))
        expected, prev, last = row.seq + 1, row.hash, row
    return Verification(
        count, last.seq if last else None, last.hash if last else None, tuple(problems)
    )


def verify_chain(conn: Connection) -> Verification:
    """Verify the stored log from its first event to its head."""
    return verify_rows(q.iter_events(conn))


def decode(row: q.EventRow) -> Event:
    """The stored row as an Event (payload parsed; unparseable payloads shown verbatim)."""
    try:
        payload = json.loads(row.payload)
    except ValueError:
        payload = {"unparseable": row.payload}
    if not isinstance(payload, dict):
        payload = {"value": payload}
    return Event(row.seq, row.occurred_at, row.kind, payload, row.prev_hash, row.hash)


def recent(conn: Connection, limit: int, kind: str | None = None) -> list[Event]:
    """The last `limit` events, optionally of one kind, oldest first."""
    return [decode(r) for r in q.recent_events(conn, limit, kind)]
