"""`signals_current` names the newest observation of every (scope, subject, kind), by observed_at
then id, whoever wrote it: batched `record_observations`, bulk Core inserts, concurrent
transactions, and rows that existed before migration 0002 (backfilled). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, select

from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import SignalCurrent, SignalObservation
from provenance.db.signal_store import record_observations
from provenance.domain import Observation, Scope, Signal, SignalKind, SignalStatus
from provenance.policy.rules import INVALID_MARK
from tests import policy_catalog as pc

T0 = datetime(2026, 6, 1, tzinfo=UTC)
# Mixed case and non-ASCII: byte order and the database's collation may disagree.
SUBJECTS = [(Scope.HOST, "a.com"), (Scope.HOST, "B.org"), (Scope.HOST, "b.org"),
            (Scope.HOST, "ä.de"), (Scope.URL, "https://a.com/x.jpg"),
            (Scope.URL, "https://a.com/Y.jpg"), (Scope.IMAGE, "f" * 64)]
KINDS = [SignalKind.ROBOTS, SignalKind.TDMREP, SignalKind.C2PA]
# Few distinct times, so ties on observed_at (decided by id) are common.
TIMES = [T0 + timedelta(days=d) for d in (0, 1, 2)]


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    eng = make_engine(catalog_url)
    yield eng
    eng.dispose()


def _observations(rng: random.Random, n: int) -> list[Observation]:
    out = []
    for _ in range(n):
        scope, subject = rng.choice(SUBJECTS)
        signal = Signal(rng.choice(KINDS), rng.choice(list(SignalStatus)))
        out.append(Observation(scope, subject, signal, rng.choice(TIMES)))
    return out


def _expected(conn: Connection) -> dict[tuple[str, str, str], int]:
    """The newest observation per key, computed from the whole history in Python."""
    best: dict[tuple[str, str, str], tuple[datetime, int]] = {}
    s = SignalObservation
    for row in conn.execute(select(s.scope, s.subject, s.kind, s.observed_at, s.id)):
        key = (row.scope, row.subject, row.kind)
        best[key] = max(best.get(key, (row.observed_at, row.id)), (row.observed_at, row.id))
    return {key: signal_id for key, (_, signal_id) in best.items()}


_COPIED = ("observed_at", "status", "tokens_reserved", "tokens_unknown", "tokens_allowed",
           "source")


def _current(conn: Connection) -> dict[tuple[str, str, str], int]:
    c = SignalCurrent.__table__.c
    rows = conn.execute(select(c.scope, c.subject, c.kind, c.signal_id, c.invalid_mark,
                               *[c[f] for f in _COPIED])).all()
    stored = {row.signal_id: (*[getattr(row, f) for f in _COPIED], bool(row.invalid_mark))
              for row in rows}
    s = SignalObservation.__table__.c
    actual = {row.id: (*[getattr(row, f) for f in _COPIED],
                       INVALID_MARK in (row.data or "").lower())
              for row in conn.execute(select(s.id, s.data, *[s[f] for f in _COPIED])
                                      .where(s.id.in_(list(stored))))}
    assert stored == actual  # fields copied from the row pointed to
    return {(row.scope, row.subject, row.kind): row.signal_id for row in rows}


def test_batches_with_duplicates_ties_and_late_older_observations(engine: Engine) -> None:
    rng = random.Random(3)
    for size in (1, 7, 30, 2, 50):
        with engine.begin() as conn:
            record_observations(conn, _observations(rng, size))
        with engine.connect() as conn:
            assert _current(conn) == _expected(conn)
    # An observation older than the current one does not replace it.
    with engine.begin() as conn:
        before = _current(conn)
        record_observations(conn, [Observation(Scope.HOST, "a.com",
                                               Signal(SignalKind.ROBOTS, SignalStatus.RESERVED),
                                               T0 - timedelta(days=30))])
        assert _current(conn) == before == _expected(conn)


def test_rolled_back_writes_leave_it_unchanged(engine: Engine) -> None:
    with engine.begin() as conn:
        record_observations(conn, _observations(random.Random(5), 20))
    with engine.connect() as conn:
        before = _current(conn)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        record_observations(conn, [Observation(Scope.HOST, "a.com",
                                               Signal(SignalKind.ROBOTS, SignalStatus.RESERVED),
                                               T0 + timedelta(days=9))])
        raise RuntimeError("abort")
    with engine.connect() as conn:
        assert _current(conn) == before == _expected(conn)


def test_concurrent_writers_converge_on_the_newest(engine: Engine) -> None:
    """Writers in parallel transactions over the same keys: whatever the commit order, each
    key ends at its newest observation (the upsert only moves forward)."""
    errors: list[BaseException] = []

    def write(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(8):
                with engine.begin() as conn:  # up to several multi-row statements each
                    record_observations(conn, _observations(rng, rng.randint(1, 1500)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with engine.connect() as conn:
        assert _current(conn) == _expected(conn)


# With and without the C2PA invalid-manifest marker (any case), and SQL LIKE wildcards.
DATA = [None, '{"extra": {"validation_state": "Invalid"}}', '{"validation_state": "valid"}',
        '{"validation_state": "invalid"}', '{"validation%state": "invalid"}']


def test_upgrade_backfills_existing_signals(engine: Engine) -> None:
    """Rows written before revision 0002 (no table, no trigger) are backfilled by the upgrade
    (key and the copied fields), and the trigger keeps the table in step afterwards."""
    rng = random.Random(11)
    migrate.downgrade(engine, "0001")
    try:
        rows = [pc.signal(i, str(scope), subject, str(rng.choice(KINDS)),
                          rng.choice(["allowed", "reserved"]), observed_at=rng.choice(TIMES),
                          tokens_allowed=rng.choice([None, ",gptbot,"]),
                          source=rng.choice([None, "https://l.example/x.xml"]),
                          data=rng.choice(DATA))
                for i, (scope, subject) in enumerate(rng.choices(SUBJECTS, k=40), start=1)]
        with engine.begin() as conn:
            conn.execute(SignalObservation.__table__.insert(), rows)
    finally:
        migrate.upgrade(engine)
    with engine.connect() as conn:
        assert len(_current(conn)) > 1
        assert _current(conn) == _expected(conn)
    with engine.begin() as conn:  # a bulk Core insert, as bench/policy.py writes
        conn.execute(SignalObservation.__table__.insert(), [
            pc.signal(100 + i, "host", "a.com", "robots", "reserved", observed_at=TIMES[2],
                      data=DATA[i], tokens_reserved=",ccbot,")
            for i in range(3)])
        assert _current(conn)[("host", "a.com", "robots")] == 102
        assert _current(conn) == _expected(conn)
