"""Fetch's per-bucket advisory locks on PostgreSQL: a bucket held by a live attempt on the same
catalog is skipped, never waited for; the same bucket number in another catalog (schema) of the
same database does not interfere."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, text

from provenance.db import bucket_locks
from provenance.db.bucket_locks import claimed_groups
from provenance.db.engine import make_engine
from tests.conftest import PG_URL, _with_search_path

pytestmark = pytest.mark.skipif(not PG_URL, reason="PROVENANCE_TEST_PG_URL not set")
HELD = "SELECT pg_advisory_lock(hashtext('provenance-fetch:' || current_database() || '.' " \
       "|| current_schema()), :b)"


@pytest.fixture
def other_schema() -> Iterator[str]:
    assert PG_URL
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE SCHEMA IF NOT EXISTS "prov_locks_other"'))
    try:
        yield _with_search_path(PG_URL, "prov_locks_other")
    finally:
        with admin.connect() as conn:
            conn.execute(text('DROP SCHEMA IF EXISTS "prov_locks_other" CASCADE'))
        admin.dispose()


def _hold(conn: Connection, bucket: int) -> None:
    conn.execute(text(HELD), {"b": bucket})
    conn.commit()


def _claimed(url: str, jobs: list[tuple[int, int]]) -> list[int]:
    """Ids of the jobs (sighting id, bucket) this process may work on, claimed as fetch does."""
    engine = make_engine(url)
    try:
        groups = claimed_groups(engine, jobs, lambda j: j[1], lambda j: j[0])
        return sorted(job[0] for group in groups for job in group)
    finally:
        engine.dispose()


def test_held_bucket_is_skipped_but_not_across_catalogs(
    pg_session_url: str, other_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The catalog is empty: let every claimed job count as still pending.
    monkeypatch.setattr(bucket_locks, "still_pending", lambda _conn, ids: set(ids))
    jobs = [(1, 100), (2, 100), (3, 200)]
    holder = create_engine(pg_session_url)
    elsewhere = create_engine(other_schema)
    live = holder.connect()
    other_catalog = elsewhere.connect()
    _hold(live, 100)  # a live attempt on this catalog holds bucket 100
    _hold(other_catalog, 200)  # same bucket number in another catalog: must not matter
    assert _claimed(pg_session_url, jobs) == [3]
    live.close()
    holder.dispose()  # closing the session releases its advisory locks
    assert _claimed(pg_session_url, jobs) == [1, 2, 3]
    other_catalog.close()
    elsewhere.dispose()
