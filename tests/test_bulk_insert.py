"""Column-wise bulk inserts (`insert_ignore_columns`) store exactly what row-wise inserts store.

On SQLite, values shared by every row are written into the statement as literals; values that
need quoting (quotes, NUL, unicode), floats, typed timestamps and all-NULL columns must come back
from the catalog identical to the same rows inserted one dict at a time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from provenance.db.engine import insert_ignore, insert_ignore_columns, make_engine
from provenance.db.models import Sighting

SIGHTINGS = Sighting.__table__
NOW = datetime(2026, 11, 25, 12, 30, 15, 123456, tzinfo=UTC)


Columns = dict[str, list[Any]]


def _rows(prefix: str, source_name: str, n: int, nul: str) -> tuple[Columns, dict[str, Any]]:
    columns: dict[str, list[Any]] = {
        "sighting_key": [f"{prefix}{i:060d}" for i in range(n)],
        "url": [f"https://h{i}.example/{i}.jpg" for i in range(n)],
        "origin": [f"m.csv#row={i + 1}" for i in range(n)],
        "caption": [None if i % 2 else f"it's a \"quote\" {nul} nul" for i in range(n)],
        "creator": [None] * n,  # all NULL: written as a literal
        "host_bucket": [i * 7 for i in range(n)],
    }
    shared = {
        "status": "pending",
        "source_name": source_name,
        "origin_kind": "manifest-row",
        "image_sha256": None,
        "local_offset": 2**40,
        "run_id": None,
        "seen_at": NOW,
    }
    return columns, shared


def _stored(conn: Any, prefix: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(SIGHTINGS).where(SIGHTINGS.c.sighting_key.startswith(prefix)).order_by(
            SIGHTINGS.c.id)
    ).mappings()
    return [{k: v for k, v in row.items() if k not in ("id", "sighting_key")} for row in rows]


def test_columns_store_what_rows_store(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    nul = "\x00" if engine.dialect.name == "sqlite" else ""  # PostgreSQL text has no NUL
    names = ("plain", "o'brien's \"crawl\"", f"é{nul}x", "'); DROP TABLE sightings; --")
    for source_name in names:
        with engine.begin() as conn:
            columns, shared = _rows("c", source_name, 5, nul)
            assert insert_ignore_columns(conn, SIGHTINGS, columns, shared,
                                         index=["sighting_key"]) == 5
            given = {**_rows("r", source_name, 5, nul)[0],
                     **{k: [v] * 5 for k, v in shared.items()}}
            rows_in = [{c.name: given[c.name][i] for c in SIGHTINGS.columns if c.name in given}
                       for i in range(5)]
            assert insert_ignore(conn, SIGHTINGS, rows_in, index=["sighting_key"]) == 5
            by_columns, by_rows = _stored(conn, "c"), _stored(conn, "r")
            assert by_columns == by_rows
            assert by_columns[0]["source_name"] == source_name
            assert by_columns[0]["seen_at"].replace(tzinfo=UTC) == NOW
            # Re-inserting is a no-op and says so.
            assert insert_ignore_columns(conn, SIGHTINGS, columns, shared,
                                         index=["sighting_key"]) == 0
            conn.execute(SIGHTINGS.delete())
    engine.dispose()


def test_copy_falls_back_when_a_concurrent_writer_commits_the_same_key(
    catalog_url: str,
) -> None:
    """PostgreSQL: a key that another transaction holds uncommitted makes the optimistic COPY
    wait for that transaction and fail when it commits; the batch is then written through
    staging + ON CONFLICT, and only the other rows count as new."""
    if not catalog_url.startswith("postgresql"):
        pytest.skip("COPY is PostgreSQL's")
    engine = make_engine(catalog_url)
    columns, shared = _rows("k", "crawl", 1500, "")
    other = engine.connect()
    blocker = other.begin()
    other.execute(SIGHTINGS.insert().values(
        sighting_key=columns["sighting_key"][700], status="pending", origin_kind="manifest-row",
        origin="elsewhere", seen_at=NOW))
    result: dict[str, Any] = {}

    def load() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '60s'")  # never hang the suite
            result["pid"] = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            result["new"] = insert_ignore_columns(conn, SIGHTINGS, columns, shared,
                                                  index=["sighting_key"])

    worker = threading.Thread(target=load)
    worker.start()
    try:
        _wait_until_blocked(engine, result)
        blocker.commit()
    finally:
        if blocker.is_active:
            blocker.rollback()
        other.close()
        worker.join(90)
    assert result["new"] == 1499
    with engine.connect() as conn:
        stored = _stored(conn, "k")
    assert len(stored) == 1500
    assert sum(row["origin"] == "elsewhere" for row in stored) == 1
    engine.dispose()


def _wait_until_blocked(engine: Any, result: dict[str, Any]) -> None:
    deadline = time.monotonic() + 30
    with engine.connect() as watch:
        while time.monotonic() < deadline:  # until the COPY waits on the uncommitted key
            waiting = watch.exec_driver_sql(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %(pid)s",
                {"pid": result.get("pid", -1)}).scalar()
            if waiting == "Lock":
                return
            # pg_stat_activity is a snapshot per transaction: end it to see the next state.
            watch.rollback()
            time.sleep(0.02)
    raise AssertionError("the COPY never waited on the concurrent key")
