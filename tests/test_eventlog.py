"""The hash-chained event log: append, verify, tampering by direct SQL, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from provenance.db.engine import make_engine
from provenance.eventlog import GENESIS_HASH, append_event, event_hash, verify_chain

T0 = datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)


def _fill(engine: Engine, count: int) -> None:
    for i in range(count):
        with engine.begin() as conn:
            append_event(conn, "test", {"i": i, "note": "é"}, T0 + timedelta(seconds=i))


def _problems(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        result = verify_chain(conn)
    return [(p.seq, p.problem) for p in result.problems]


def test_append_chains_events_and_verifies(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    with engine.begin() as conn:
        first = append_event(conn, "ingest", {"run_id": 1, "images_new": 3}, T0)
        second = append_event(conn, "audit", {"samples": 3}, T0 + timedelta(seconds=1))
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert first.hash == event_hash(GENESIS_HASH, 1, "ingest", T0, {"images_new": 3, "run_id": 1})
    with engine.connect() as conn:
        result = verify_chain(conn)
        stored = conn.execute(text("SELECT payload FROM events WHERE seq = 1")).scalar_one()
    assert result.ok and result.events == 2 and result.head_hash == second.hash
    assert stored == '{"images_new":3,"run_id":1}'  # canonical JSON
    engine.dispose()


def test_rolled_back_transaction_leaves_no_event(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    try:
        with engine.begin() as conn:
            append_event(conn, "export", {"export_id": 9}, T0)
            raise RuntimeError("the work failed")
    except RuntimeError:
        pass
    with engine.connect() as conn:
        assert verify_chain(conn).events == 0
    engine.dispose()


def test_edited_payload_is_detected(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    _fill(engine, 5)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET payload = :p WHERE seq = 3"), {"p": '{"i":99}'})
    problems = _problems(engine)
    assert problems[0][0] == 3 and "contents" in problems[0][1]
    # The following event still links to the stored hash, so only seq 3 is named.
    assert [seq for seq, _ in problems] == [3]
    engine.dispose()


def test_edited_hash_breaks_the_next_link(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    _fill(engine, 4)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET kind = 'other' WHERE seq = 2"))
    assert [seq for seq, _ in _problems(engine)] == [2]
    engine.dispose()


def test_deleted_event_is_detected(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    _fill(engine, 5)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE seq = 2"))
    problems = _problems(engine)
    assert {seq for seq, _ in problems} == {3}
    assert any("2 missing" in p for _, p in problems)
    engine.dispose()


def test_swapped_events_are_detected(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    _fill(engine, 5)
    with engine.begin() as conn:
        conn.execute(text("UPDATE events SET seq = -2 WHERE seq = 2"))
        conn.execute(text("UPDATE events SET seq = 2 WHERE seq = 4"))
        conn.execute(text("UPDATE events SET seq = 4 WHERE seq = -2"))
    problems = _problems(engine)
    assert {seq for seq, _ in problems} == {2, 3, 4, 5}
    engine.dispose()


def test_log_cli_verify_and_show(cli, catalog_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(catalog_url)
    _fill(engine, 3)
    ok = json.loads(cli("log", "verify", "--json").stdout)
    assert ok["ok"] is True and ok["events"] == 3 and ok["head"]["seq"] == 3
    shown = json.loads(cli("log", "show", "--limit", "2", "--json").stdout)
    assert [e["seq"] for e in shown["events"]] == [2, 3]
    assert shown["events"][0]["payload"] == {"i": 1, "note": "é"}
    assert shown["events"][0]["occurred_at"] == "2026-11-20T12:00:01.123456Z"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE seq = 1"))
    broken = cli("log", "verify", "--json", expect=1)
    doc = json.loads(broken.stdout)
    assert doc["ok"] is False and doc["first_broken_seq"] == 2
    human = cli("log", "verify", expect=1)
    assert "seq 2" in human.stderr
    engine.dispose()


def _writer(url: str, name: str, count: int, barrier: Any) -> None:
    engine = make_engine(url)
    with engine.connect():
        pass
    barrier.wait(60)  # both processes append at the same time
    for i in range(count):
        with engine.begin() as conn:
            # Read something first, as real use cases do, before appending.
            conn.execute(text("SELECT count(*) FROM images")).scalar_one()
            append_event(conn, "test", {"writer": name, "i": i}, datetime.now(UTC))
    engine.dispose()


def test_concurrent_writers_never_fork_the_chain(catalog_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(catalog_url, name, 50, barrier))
             for name in "ab"]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    engine = make_engine(catalog_url)
    with engine.connect() as conn:
        result = verify_chain(conn)
        writers = conn.execute(text("SELECT payload FROM events ORDER BY seq")).scalars().all()
    assert result.ok, result.problems
    assert result.events == 100 and result.head_seq == 100
    assert sorted(json.loads(w)["writer"] for w in writers) == ["a"] * 50 + ["b"] * 50
    engine.dispose()
