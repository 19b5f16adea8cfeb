"""`provenance db partition` on the real PostgreSQL: a data-preserving conversion to RANGE
partitions, after which the same commands give the same catalog and the same shards
(ingest by one process and by Ray, re-ingest idempotent, export); SQLite is refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from provenance.db.engine import make_engine
from provenance.db.partitioning import bounds
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
    assert sorted(report["converted"]) == ["export_members", "images", "sightings"]
    assert report["rows"]["sightings"] == len(before["sightings"]) > 0
    assert _partitioned(url) == {"images": 8, "sightings": 9, "export_members": 8}
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
    assert again["converted"] == [] and len(again["already_partitioned"]) == 3


def test_partition_refused_on_sqlite(single: tuple[str, Path], tmp_path: Path) -> None:  # noqa: F811
    result = _cli(single[0], tmp_path)("db", "partition", "--count", "4", expect=2)
    assert "PostgreSQL catalogs only" in result.stderr


@needs_pg
def test_partition_count_checked(fresh_pg: Callable[[], str], tmp_path: Path) -> None:  # noqa: F811
    result = Cli(_cli(fresh_pg(), tmp_path).settings)("db", "partition", "--count", "1",
                                                      expect=2)
    assert "--count" in result.stderr
