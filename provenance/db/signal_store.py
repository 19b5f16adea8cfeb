"""Persistence of signal observations: append-only rows in `signals`, raw evidence kept once by
content hash in `evidence_blobs`.

Nothing here ever updates or deletes an observation: a newer observation of the same subject
and kind is a new row, so "what did robots.txt of host Y say on date D" can always be answered
(`latest_observations(..., as_of=D)` and `history`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, bindparam, func, or_, select
from sqlalchemy.engine import Connection

from provenance.db.bulk import partition_columns
from provenance.db.engine import insert_ignore
from provenance.db.models import EvidenceBlob, SignalObservation, UTCDateTime
from provenance.domain import Observation, Scope, Signal, SignalKind, SignalStatus
from provenance.ingest.keys import subject_bucket

SIGNALS = cast(Table, SignalObservation.__table__)
BLOBS = cast(Table, EvidenceBlob.__table__)
EXCERPT_CHARS = 400
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
# Subjects per IN (...) list: well under SQLite's bound-parameter limit.
_CHUNK = 500


@dataclass(frozen=True)
class Evidence:
    """Raw bytes an observation was read from (a robots.txt body, a license XML).

    Passed next to an observation when the exact bytes matter more than `Signal.evidence`
    (which is text, and may be a decoded or shortened form).
    """

    content: bytes
    media_type: str | None = None


@dataclass(frozen=True)
class StoredObservation:
    """An observation as read back from the catalog, with its row id and evidence pointers."""

    id: int
    observation: Observation
    evidence_sha256: str | None
    evidence_excerpt: str | None

    @property
    def signal(self) -> Signal:
        return self.observation.signal

    @property
    def observed_at(self) -> datetime:
        return self.observation.observed_at

    @property
    def expires_at(self) -> datetime | None:
        return self.observation.expires_at


def frame_tokens(tokens: Iterable[str]) -> str:
    """Comma-framed, sorted token list: `,ccbot,gptbot,` (`,` when empty)."""
    return "," + "".join(f"{t}," for t in sorted(tokens))


def _token_columns(tokens: Mapping[str, SignalStatus]) -> dict[str, str | None]:
    if not tokens:
        return {"tokens_reserved": None, "tokens_unknown": None, "tokens_allowed": None}
    by_status: dict[SignalStatus, list[str]] = {s: [] for s in SignalStatus}
    for token, status in tokens.items():
        by_status[SignalStatus(status)].append(token.lower())
    return {
        "tokens_reserved": frame_tokens(by_status[SignalStatus.RESERVED]),
        "tokens_unknown": frame_tokens(by_status[SignalStatus.UNKNOWN]),
        "tokens_allowed": frame_tokens(by_status[SignalStatus.ALLOWED]),
    }


class _EvidenceBatch:
    """Evidence blobs of one batch, hashed once per distinct body.

    URL-scope observations of one host quote the same robots.txt body many times over.
    """

    def __init__(self) -> None:
        self.blobs: dict[str, dict[str, Any]] = {}
        self._by_text: dict[str, tuple[str, str]] = {}
        self._by_bytes: dict[bytes, tuple[str, str]] = {}

    def add(self, obs: Observation, raw: Evidence | None) -> tuple[str | None, str | None]:
        """(sha256, excerpt) of the observation's evidence, or (None, None) without any."""
        if raw is not None:
            hit = self._by_bytes.get(raw.content)
            if hit is None:
                excerpt = raw.content[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
                hit = self._by_bytes[raw.content] = (self._blob(obs, raw), excerpt[:EXCERPT_CHARS])
            return hit
        text = obs.signal.evidence
        if text is None:
            return None, None
        hit = self._by_text.get(text)
        if hit is None:
            blob = Evidence(text.encode("utf-8", errors="replace"), TEXT_MEDIA_TYPE)
            hit = self._by_text[text] = (self._blob(obs, blob), text[:EXCERPT_CHARS])
        return hit

    def _blob(self, obs: Observation, evidence: Evidence) -> str:
        digest = hashlib.sha256(evidence.content).hexdigest()
        self.blobs.setdefault(
            digest,
            {
                "sha256": digest,
                "media_type": evidence.media_type,
                "size": len(evidence.content),
                "content": evidence.content,
                "first_seen_at": obs.observed_at,
            },
        )
        return digest


def record_observations(
    conn: Connection,
    observations: Sequence[Observation],
    raw: Sequence[Evidence | None] | None = None,
) -> list[Observation]:
    """Append observations (and their evidence blobs) in two batched statements.

    `raw`, when given, runs parallel to `observations` and supplies the exact bytes to keep as
    evidence; otherwise `Signal.evidence` (text) is kept. Blobs are inserted once per content
    hash (insert-ignore); observation rows are always new rows. Returns the observations.
    """
    if raw is not None and len(raw) != len(observations):
        raise ValueError("raw evidence must run parallel to observations")
    batch = _EvidenceBatch()
    rows = [
        _row(obs, *batch.add(obs, raw[i] if raw is not None else None))
        for i, obs in enumerate(observations)
    ]
    if batch.blobs:
        insert_ignore(conn, BLOBS, list(batch.blobs.values()), index=["sha256"])
    if rows:
        _insert_signals(conn, rows)
    return list(observations)


_PG_ROWS_PER_STATEMENT = 1000


def _insert_signals(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert observation rows; a trigger upserts `signals_current` (migration 0002).

    On PostgreSQL that upsert holds row locks to commit, so concurrent writers sharing keys
    must lock them in one order or deadlock: rows go in by key in byte order (what the trigger
    sorts by), stably, so among one key's observations the later still gets the higher id (the
    tie-break); and in multi-row statements, so the trigger runs once per statement, not per
    row. SQLite has one writer at a time: rows go in as given."""
    if conn.dialect.name != "postgresql":
        conn.execute(SIGNALS.insert(), rows)
        return
    ordered = sorted(rows, key=lambda r: (r["scope"].encode(), r["subject"].encode(),
                                          r["kind"].encode()))
    for start in range(0, len(ordered), _PG_ROWS_PER_STATEMENT):
        conn.execute(SIGNALS.insert().values(ordered[start:start + _PG_ROWS_PER_STATEMENT]))


def _clean(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; hostile bodies (kept exactly in the blob) may have it.
    return text.replace("\x00", "\ufffd") if text else text


def _row(obs: Observation, digest: str | None, excerpt: str | None) -> dict[str, Any]:
    sig = obs.signal
    # Per-token verdicts live in the three token columns only. Rows written before revision
    # 0004 also repeated them in `data` (which `_stored` still reads): about half of the row of
    # a fetched URL's robots verdict (bench/sizing.py).
    data: dict[str, Any] = {}
    if sig.extra:
        data["extra"] = dict(sig.extra)
    return {
        "scope": str(obs.scope),
        "subject": _clean(obs.subject),
        "kind": str(sig.kind),
        "status": str(sig.status),
        **_token_columns(sig.tokens),
        "detail": _clean(sig.detail) or None,
        "data": json.dumps(data, sort_keys=True, default=str) if data else None,
        "source": _clean(sig.source),
        "evidence_sha256": digest,
        "evidence_excerpt": _clean(excerpt),
        "observed_at": obs.observed_at,
        "expires_at": obs.expires_at,
        "run_id": obs.run_id,
        "bucket": subject_bucket(str(obs.scope), obs.subject),
    }


def _tokens(row: Row[Any], data: Mapping[str, Any]) -> dict[str, SignalStatus]:
    """Per-token verdicts of a stored row, by token name: from its token columns (older rows
    also carry them in `data`, read as they are)."""
    if "tokens" in data:
        return {k: SignalStatus(v) for k, v in data["tokens"].items()}
    found = {token: status
             for status, framed in ((SignalStatus.RESERVED, row.tokens_reserved),
                                    (SignalStatus.UNKNOWN, row.tokens_unknown),
                                    (SignalStatus.ALLOWED, row.tokens_allowed))
             for token in (framed or "").split(",") if token}
    return dict(sorted(found.items()))


def _stored(row: Row[Any]) -> StoredObservation:
    data = json.loads(row.data) if row.data else {}
    signal = Signal(
        kind=SignalKind(row.kind),
        status=SignalStatus(row.status),
        detail=row.detail or "",
        source=row.source,
        tokens=_tokens(row, data),
        extra=data.get("extra", {}),
    )
    obs = Observation(
        scope=Scope(row.scope),
        subject=row.subject,
        signal=signal,
        observed_at=row.observed_at,
        expires_at=row.expires_at,
        run_id=row.run_id,
    )
    return StoredObservation(row.id, obs, row.evidence_sha256, row.evidence_excerpt)


@lru_cache(maxsize=32)
def _latest_statement(
    with_kinds: bool, with_as_of: bool, by_source: bool, pruned: bool = False
) -> Select[Any]:
    """The latest-per-key query, built once per shape (hot on cache lookups).

    The key is (subject, kind), or (source, kind) when `by_source`: one host serves several
    documents of a kind (robots.txt over http and https, several RSL licenses). `pruned` also
    names the subjects' buckets (or none), so that PostgreSQL reads only their partitions of a
    partitioned `signals`.
    """
    conds = [
        SIGNALS.c.scope == bindparam("scope"),
        SIGNALS.c.subject.in_(bindparam("subjects", expanding=True)),
    ]
    if pruned:
        conds.append(or_(SIGNALS.c.bucket.in_(bindparam("buckets", expanding=True)),
                         SIGNALS.c.bucket.is_(None)))
    if with_kinds:
        conds.append(SIGNALS.c.kind.in_(bindparam("kinds", expanding=True)))
    if with_as_of:
        conds.append(SIGNALS.c.observed_at <= bindparam("as_of", type_=UTCDateTime()))
    if by_source:
        conds.append(SIGNALS.c.source.in_(bindparam("sources", expanding=True)))
    key = SIGNALS.c.source if by_source else SIGNALS.c.subject
    rank = (
        func.row_number()
        .over(
            partition_by=(key, SIGNALS.c.kind),
            order_by=(SIGNALS.c.observed_at.desc(), SIGNALS.c.id.desc()),
        )
        .label("rank")
    )
    ranked = select(SIGNALS, rank).where(and_(*conds)).subquery()
    return select(ranked).where(ranked.c.rank == 1).order_by(ranked.c.id)


def _latest(
    conn: Connection,
    scope: Scope,
    subjects: Iterable[str],
    kinds: Iterable[SignalKind] | None,
    as_of: datetime | None,
    sources: Iterable[str] | None,
) -> list[StoredObservation]:
    wanted = sorted(set(subjects))
    pruned = signals_partitioned(conn)
    stmt = _latest_statement(kinds is not None, as_of is not None, sources is not None, pruned)
    params: dict[str, Any] = {"scope": str(scope)}
    if kinds is not None:
        params["kinds"] = sorted(str(k) for k in kinds)
    if as_of is not None:
        params["as_of"] = as_of
    if sources is not None:
        params["sources"] = sorted(set(sources))
    found: list[StoredObservation] = []
    for start in range(0, len(wanted), _CHUNK):
        params["subjects"] = wanted[start : start + _CHUNK]
        if pruned:
            buckets = {subject_bucket(str(scope), s) for s in params["subjects"]}
            params["buckets"] = sorted(b for b in buckets if b is not None) or [-1]
        found.extend(_stored(row) for row in conn.execute(stmt, params))
    return found


def signals_partitioned(conn: Connection) -> bool:
    """Whether `signals` is range-partitioned (`db partition`), remembered per database
    connection: lookups then name the buckets they need. (A catalog partitioned while a process
    holds a connection is only read without pruning, which gives the same rows.)"""
    known = conn.info.get("signals_partitioned")
    if known is None:
        known = conn.info["signals_partitioned"] = bool(partition_columns(conn, "signals"))
    return bool(known)


def latest_observations(
    conn: Connection,
    scope: Scope,
    subjects: Iterable[str],
    kinds: Iterable[SignalKind] | None = None,
    as_of: datetime | None = None,
) -> dict[tuple[str, SignalKind], StoredObservation]:
    """The newest observation per (subject, kind), by observed_at then id.

    `as_of` answers what was known at that time (observations made after it are ignored).
    """
    return {
        (s.observation.subject, s.signal.kind): s
        for s in _latest(conn, scope, subjects, kinds, as_of, None)
    }


def latest_by_source(
    conn: Connection,
    scope: Scope,
    subjects: Iterable[str],
    sources: Iterable[str],
    kinds: Iterable[SignalKind] | None = None,
    as_of: datetime | None = None,
) -> dict[tuple[str, SignalKind], StoredObservation]:
    """The newest observation per (source document URL, kind) among `subjects`' observations.

    For host documents: e.g. the robots.txt at https://example.com/robots.txt, as opposed to
    the one served over http, both observations of the host `example.com`.
    """
    return {
        (s.signal.source or "", s.signal.kind): s
        for s in _latest(conn, scope, subjects, kinds, as_of, list(sources))
    }


def history(
    conn: Connection,
    scope: Scope | None,
    subject: str,
    kind: SignalKind | None = None,
    *,
    subject_prefix: bool = False,
) -> list[StoredObservation]:
    """Every observation of a subject (or of subjects starting with it), oldest first.

    `scope` None searches every scope.
    """
    conds = []
    if scope is not None:
        conds.append(SIGNALS.c.scope == str(scope))
    if subject_prefix:
        conds.append(SIGNALS.c.subject.startswith(subject, autoescape=True))
    else:
        conds.append(SIGNALS.c.subject == subject)
        if scope is not None and signals_partitioned(conn):
            bucket = subject_bucket(str(scope), subject)
            conds.append(SIGNALS.c.bucket.is_(None) if bucket is None else
                         or_(SIGNALS.c.bucket == bucket, SIGNALS.c.bucket.is_(None)))
    if kind is not None:
        conds.append(SIGNALS.c.kind == str(kind))
    stmt = select(SIGNALS).where(and_(*conds)).order_by(SIGNALS.c.observed_at, SIGNALS.c.id)
    return [_stored(row) for row in conn.execute(stmt)]


def evidence_bytes(conn: Connection, sha256: str) -> bytes | None:
    """The raw evidence kept under a content hash, or None if there is none."""
    content = conn.execute(select(BLOBS.c.content).where(BLOBS.c.sha256 == sha256)).scalar()
    return bytes(content) if content is not None else None


def evidence_contents(conn: Connection, sha256s: Iterable[str]) -> dict[str, bytes]:
    """Raw evidence for several content hashes in one query (missing ones are left out)."""
    wanted = sorted(set(sha256s))
    if not wanted:
        return {}
    stmt = select(BLOBS.c.sha256, BLOBS.c.content).where(BLOBS.c.sha256.in_(wanted))
    return {sha: bytes(content) for sha, content in conn.execute(stmt)}


def evidence_text(conn: Connection, sha256: str) -> str | None:
    """The evidence under a content hash as text (undecodable bytes replaced)."""
    content = evidence_bytes(conn, sha256)
    return content.decode("utf-8", errors="replace") if content is not None else None
