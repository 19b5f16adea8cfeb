"""`provenance db partition` on the real PostgreSQL: a data-preserving conversion to RANGE
partitions, after which the same commands give the same catalog and the same shards
(ingest by one process and by Ray, re-ingest idempotent, export); SQLite is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text

from provenance.db.engine import make_engine
from provenance.db.partitioning import bounds
from provenance.db.signal_store import history, latest_observations, signals_partitioned
from provenance.domain import Scope
from provenance.ingest.keys import subject_bucket
from provenance.samples import image_bytes
from tests.conftest import PG_URL, Cli
from tests.test_scale import (  # noqa: F401  (fixtures)
    _cli,
    _export_args,
    _sources,
    big_manifest,
    catalog,
    fresh_pg,
    inputs,
    local_ray,
    shards,
    single,
)

needs_pg = pytest.mark.skipif(not PG_URL, reason="PROVENANCE_TEST_PG_URL not set")


def _partitioned(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, count(i.inhrelid) FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
            "LEFT JOIN pg_inherits i ON i.inhparent = p.partrelid GROUP BY c.relname")).all()
    engine.dispose()
    return {str(name): int(n) for name, n in rows}


def test_bounds_cover_the_16_bit_space() -> None:
    assert bounds(4, True) == [("MINVALUE", "'4000'"), ("'4000'", "'8000'"),
                               ("'8000'", "'c000'"), ("'c000'", "MAXVALUE")]
    assert bounds(3, False) == [("MINVALUE", "21845"), ("21845", "43690"),
                                ("43690", "MAXVALUE")]


@needs_pg
def test_partition_preserves_rows_and_commands_agree(
    local_ray: None, inputs: Path, single: tuple[str, Path],  # noqa: F811
    fresh_pg: Callable[[], str], tmp_path: Path,  # noqa: F811
) -> None:
    url = fresh_pg()
    cli = _cli(url, tmp_path)
    cli("ingest", str(inputs / "images"), "--workers", "1")
    before = catalog(url)
    report = json.loads(cli("db", "partition", "--count", "8", "--json").stdout)
    assert sorted(report["converted"]) == ["export_members", "fetch_attempts", "images",
                                           "sightings", "signals"]
    assert report["rows"]["sightings"] == len(before["sightings"]) > 0
    assert _partitioned(url) == {"images": 8, "sightings": 9, "export_members": 8,
                                 "signals": 9, "fetch_attempts": 9}
    assert catalog(url) == before

    # The same commands work on the partitioned catalog and agree with one SQLite process.
    cli("ingest", *_sources(inputs), "--engine", "ray", "--partitions", "2")
    cli("ingest", *_sources(inputs), "--workers", "1")  # idempotent: nothing new
    assert catalog(url) == catalog(single[0])
    cli(*_export_args(inputs, tmp_path / "out"))
    assert shards(tmp_path / "out") == shards(single[1])

    # Big batches take the COPY path, whose conflict target now includes the bucket.
    manifest = big_manifest(tmp_path, 1500)
    first = json.loads(cli("ingest", str(manifest), "--json").stdout)
    again = json.loads(cli("ingest", str(manifest), "--json").stdout)
    assert first["sightings_new"] == 1500 and again["sightings_new"] == 0

    again = json.loads(cli("db", "partition", "--count", "8", "--json").stdout)
    assert again["converted"] == [] and len(again["already_partitioned"]) == 5


def _fetch_catalog(url: str, tmp: Path, manifest: Path, partitions: int | None) -> Cli:
    cli = _cli(url, tmp)
    cli("ingest", str(manifest))
    if partitions:
        report = json.loads(cli("db", "partition", "--count", str(partitions), "--json").stdout)
        assert {"signals", "fetch_attempts"} <= set(report["converted"])
        # Their ids are unique only with the bucket now: the keys to them cannot stay.
        assert any(fk.startswith("signals_current.") for fk in report["dropped_foreign_keys"])
        assert any(fk.startswith("fetch_attempts.") for fk in report["dropped_foreign_keys"])
    done = json.loads(cli("fetch", "--allow-private", "--json").stdout)
    assert done["pending"] == 0 and done["fetched"] > 0, done
    return cli


def _misplaced(url: str, table: str, subject: str, count: int) -> list[tuple[str, str]]:
    """Rows that are not in the partition of their subject's bucket (computed here from the
    subject, as the partition contract defines it)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"SELECT tableoid::regclass::text, {subject} FROM {table} ORDER BY 1, 2")).all()
    engine.dispose()
    edges = [k * 65536 // count for k in range(count + 1)]
    wrong = []
    for part, (scope, name) in ((r[0], r[1].split(" ", 1)) for r in rows):
        bucket = subject_bucket(scope, name)
        k = None if bucket is None else next(i for i in range(count) if bucket < edges[i + 1])
        expected = f"{table}_pdefault" if k is None else f"{table}_p{k:05d}"
        if part.rsplit(".", 1)[-1] != expected:
            wrong.append((part, name))
    return wrong


URLS = 8


@needs_pg
def test_partitioned_log_tables_record_the_same_fetch(
    fresh_pg: Callable[[], str], tmp_path: Path, httpserver: HTTPServer,  # noqa: F811
) -> None:
    """signals and fetch_attempts partitioned by their bucket: a fetch records what it records on
    a plain catalog, each row in its bucket's partition, and the re-created trigger keeps
    signals_current."""
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nAllow: /\n")
    for absent in ("/ai.txt", "/.well-known/tdmrep.json"):
        httpserver.expect_request(absent).respond_with_data("", status=404)
    for k in range(URLS):
        httpserver.expect_request(f"/img/{k}.jpg").respond_with_data(
            image_bytes(k, (32, 24), "JPEG"), content_type="image/jpeg",
            headers={"X-Robots-Tag": "noai"} if k % 3 == 0 else {})
    hosts = ["127.0.0.1", "localhost"]
    manifest = tmp_path / "urls.csv"
    manifest.write_text("url,license\n" + "".join(
        f"http://{hosts[k % 2]}:{httpserver.port}/img/{k}.jpg,CC0-1.0\n" for k in range(URLS)))
    plain, parted = fresh_pg(), fresh_pg()
    _fetch_catalog(plain, tmp_path / "plain", manifest, None)
    _fetch_catalog(parted, tmp_path / "parted", manifest, 4)
    # Equal up to times (expires_at is observed_at plus the cache lifetime).
    signals = [[{k: v for k, v in row.items() if k != "expires_at"}
                for row in catalog(u)["signals"]] for u in (plain, parted)]
    assert signals[0] == signals[1] and len(signals[0]) > URLS
    assert _misplaced(parted, "signals", "scope || ' ' || subject", 4) == []
    assert _misplaced(parted, "fetch_attempts", "'url ' || url", 4) == []
    for url in (plain, parted):
        engine = make_engine(url)
        with engine.connect() as conn:
            newest = conn.execute(text(
                "SELECT DISTINCT ON (scope, subject, kind) scope, subject, kind, id FROM signals "
                "ORDER BY scope, subject, kind, observed_at DESC, id DESC")).all()
            current = conn.execute(text(
                "SELECT scope, subject, kind, signal_id FROM signals_current "
                "ORDER BY scope, subject, kind")).all()
            attempts = conn.execute(text("SELECT count(*) FROM fetch_attempts")).scalar_one()
        engine.dispose()
        assert [tuple(r) for r in current] == [tuple(r) for r in newest] and current
        assert attempts == URLS
    # Lookups by subject name their buckets on the partitioned table, and find the same.
    seen = []
    for url in (plain, parted):
        engine = make_engine(url)
        with engine.connect() as conn:
            subjects = {scope: sorted(conn.execute(text(
                "SELECT DISTINCT subject FROM signals WHERE scope = :s"), {"s": scope}).scalars())
                for scope in ("host", "url", "image")}
            found = {(scope, subject, str(kind)): (s.signal.status, s.signal.detail)
                     for scope in subjects
                     for (subject, kind), s in latest_observations(
                         conn, Scope(scope), [*subjects[scope], "nowhere.example"]).items()}
            past = history(conn, Scope.HOST, subjects["host"][0])
            seen.append((signals_partitioned(conn), found,
                         [(o.signal.kind, o.signal.status) for o in past]))
        engine.dispose()
    assert [s[0] for s in seen] == [False, True]
    assert seen[0][1:] == seen[1][1:] and len(seen[0][1]) > URLS and seen[0][2]


def test_partition_refused_on_sqlite(single: tuple[str, Path], tmp_path: Path) -> None:  # noqa: F811
    result = _cli(single[0], tmp_path)("db", "partition", "--count", "4", expect=2)
    assert "PostgreSQL catalogs only" in result.stderr


@needs_pg
def test_partition_count_checked(fresh_pg: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    result = Cli(_cli(fresh_pg(), tmp_path).settings)("db", "partition", "--count", "1",
                                                      expect=2)
    assert "--count" in result.stderr
