"""The partition key of the log tables (revision 0004): every signal and fetch attempt carries
the 16-bit bucket of its subject, written by the writers and backfilled for older rows, on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import FetchAttempt, SignalObservation
from provenance.db.signal_store import record_observations
from provenance.domain import Observation, Scope, Signal, SignalKind, SignalStatus
from provenance.ingest.keys import host_bucket, subject_bucket
from tests import policy_catalog as pc

T0 = datetime(2026, 6, 1, tzinfo=UTC)
SHA = hashlib.sha256(b"x").hexdigest()
SUBJECTS = [(Scope.HOST, "a.com"), (Scope.HOST, "Bücher.example"),
            (Scope.URL, "https://A.com./x.jpg"), (Scope.URL, "http://b.org:8080/y?z=1"),
            (Scope.URL, "ftp://c.net/z.jpg"), (Scope.IMAGE, SHA)]


def _bucket(host: str) -> int:
    """The contract's definition, spelled out: the first 16 bits of sha256(normalized host)."""
    return int.from_bytes(hashlib.sha256(host.encode()).digest()[:2], "big")


def test_subject_buckets_follow_the_partition_contract() -> None:
    assert subject_bucket("host", "a.com") == _bucket("a.com") == host_bucket("A.COM.")
    assert subject_bucket("host", "Bücher.example") == _bucket("xn--bcher-kva.example")
    # A URL's signals go with its host: the bucket its sightings and fetch partition use.
    assert subject_bucket("url", "https://A.com./x.jpg") == _bucket("a.com")
    assert subject_bucket("url", "http://b.org:8080/y?z=1") == _bucket("b.org")
    # Images: the sha256 range, the same 16-bit space as export and policy partitions.
    assert subject_bucket("image", SHA) == int(SHA[:4], 16)
    # Nothing to partition by: the DEFAULT partition.
    assert subject_bucket("url", "ftp://c.net/z.jpg") is None
    assert subject_bucket("url", "not a url") is None
    assert subject_bucket("image", "zz") is None


@pytest.fixture
def engine(catalog_url: str) -> Iterator[Engine]:
    eng = make_engine(catalog_url)
    yield eng
    eng.dispose()


def test_writers_store_the_bucket(engine: Engine) -> None:
    observations = [Observation(scope, subject, Signal(SignalKind.ROBOTS, SignalStatus.ALLOWED),
                                T0) for scope, subject in SUBJECTS]
    with engine.begin() as conn:
        record_observations(conn, observations)
    with engine.connect() as conn:
        rows = conn.execute(select(SignalObservation.scope, SignalObservation.subject,
                                   SignalObservation.bucket)).all()
    assert len(rows) == len(SUBJECTS)
    assert {(r.scope, r.subject): r.bucket for r in rows} == {
        (str(scope), subject): subject_bucket(str(scope), subject) for scope, subject in SUBJECTS}


def test_upgrade_backfills_buckets(engine: Engine) -> None:
    """Rows written before revision 0004 get their bucket from the upgrade, in batches."""
    rng = random.Random(4)
    migrate.downgrade(engine, "0003")
    try:
        signals = [pc.signal(i, str(scope), subject, "robots", "allowed")
                   for i, (scope, subject) in enumerate(rng.choices(SUBJECTS, k=30), start=1)]
        urls = ["https://a.com/1.jpg", "http://B.org/2.jpg", "mailto:x@y.z"]
        attempts = [{"id": i, "sighting_id": i, "run_id": None, "url": u, "attempted_at": T0,
                     "outcome": "failed", "status_code": None, "error": None, "bytes": None,
                     "elapsed_ms": None, "user_agent": None, "image_sha256": None}
                    for i, u in enumerate(urls, start=1)]
        pc.insert(engine, sightings=[pc.sighting(i, None, url=u) for i, u in enumerate(urls, 1)],
                  signals=signals)
        with engine.begin() as conn:
            conn.execute(FetchAttempt.__table__.insert(), attempts)
    finally:
        migrate.upgrade(engine)
    with engine.connect() as conn:
        stored = {r.id: r.bucket for r in conn.execute(
            select(SignalObservation.id, SignalObservation.bucket))}
        tried = {r.url: r.host_bucket for r in conn.execute(
            select(FetchAttempt.url, FetchAttempt.host_bucket))}
    assert stored == {s["id"]: subject_bucket(s["scope"], s["subject"]) for s in signals}
    assert any(v is None for v in stored.values()) and any(v is not None for v in stored.values())
    assert tried == {"https://a.com/1.jpg": _bucket("a.com"),
                     "http://B.org/2.jpg": _bucket("b.org"), "mailto:x@y.z": None}
