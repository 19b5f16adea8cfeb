"""The columnar path for URL-only manifests makes exactly the rows of the generic path.

Odd URLs (user info, IPv6, escapes, IDNA, ports, upper case, other schemes, empty), licenses,
tags and extra columns are fed to both paths; rows, their order and the bad items must agree,
in memory and, through `provenance ingest`, in the catalog on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from provenance.db.engine import make_engine
from provenance.db.models import Sighting
from provenance.ingest.columnar import manifest_url_batches
from provenance.ingest.readers import manifest_inputs
from provenance.ingest.rows import PreparedWindow, prepare_url_batch, prepare_window
from tests.conftest import Cli

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URLS: list[str | None] = [
    "https://Example.COM/a.jpg",
    "http://user:pw@host.example.org/x.png",
    "http://[2001:db8::1]:8080/i.jpg",
    "https://例え.jp/画像.jpg",
    "HTTPS://cdn.example.co.uk:443/p.jpg",
    "ftp://example.com/f.jpg",
    "",
    None,
    "   https://spaces.example.net/s.jpg  ",
    "https://exa%6dple.com/e.jpg",
    "http://bad[host/x",
    "https://example.com/dup.jpg",
    "https://example.com/dup.jpg",
    "javascript:alert(1)",
    "http:///nohost",
    "https://a.b.example.com./trailing-dot.jpg",
    "https://192.168.0.1:8443/ip.jpg",
]
LICENSES = ["CC BY 4.0", "cc0", "", None, "https://creativecommons.org/licenses/by-nc-sa/3.0/", "?"]


def _columns(n: int) -> dict[str, list[Any]]:
    return {
        "URL": URLS[:n],
        "TEXT": [f'cap "{i}" é' if i % 3 else None for i in range(n)],
        "LICENSE": [LICENSES[i % len(LICENSES)] for i in range(n)],
        "tags": ["a; b, c" if i % 4 == 0 else "" for i in range(n)],
        "similarity": [math.nan if i == 2 else i / 7 for i in range(n)],
        "width": [i * 10 if i % 5 else None for i in range(n)],
        "note": [f'q"\\{i}ü' if i % 2 else "" for i in range(n)],
        "nsfw": [i % 2 == 0 for i in range(n)],
    }


def _parquet(path: Path) -> Path:
    table = pa.table(_columns(len(URLS)))
    pq.write_table(table, path, row_group_size=5)  # row groups cut reader batches short
    return path


def _csv(path: Path) -> Path:
    cols = _columns(len(URLS))
    names = list(cols)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        for i in range(len(URLS)):
            writer.writerow(["" if cols[c][i] is None else cols[c][i] for c in names])
            if i == 3:
                fh.write("\n")  # a blank line: skipped, not counted as a row
        writer.writerow(["https://extra.example/x.jpg", "t", "", "", "1", "2", "n", "x", "more"])
        writer.writerow(["https://short.example/y.jpg", "only two"])
    return path


def _generic(
    path: Path, size: int, license: str | None, source: str = "src"
) -> list[PreparedWindow]:
    items = list(manifest_inputs(path))
    return [
        prepare_window(source, items[k : k + size], [], 7, NOW, license)
        for k in range(0, len(items), size)
    ]


def _columnar(path: Path, size: int, license: str | None) -> list[PreparedWindow]:
    batches = manifest_url_batches(path, size)
    assert batches is not None, "a URL-only manifest takes the columnar path"
    return [prepare_url_batch("src", batch, 7, NOW, license) for batch in batches]


def _pending(window: PreparedWindow) -> list[dict[str, Any]]:
    cols, shared = window.pending_columns, window.pending_shared
    rows = [dict(zip(cols, values, strict=True)) for values in zip(*cols.values(), strict=True)]
    return window.rows["pending"] + [{**row, **shared} for row in rows]


def test_columnar_rows_equal_generic_rows(tmp_path: Path) -> None:
    for path in (_parquet(tmp_path / "m.parquet"), _csv(tmp_path / "m.csv")):
        for size, license in ((4, None), (6, "CC-BY-SA-4.0"), (1000, None)):
            generic, columnar = _generic(path, size, license), _columnar(path, size, license)
            assert len(generic) == len(columnar)
            for slow, fast in zip(generic, columnar, strict=True):
                assert fast.size == slow.size
                assert _pending(fast) == slow.rows["pending"]
                assert fast.rows["bad"] == slow.rows["bad"]
                assert fast.bad == slow.bad
                assert fast.new_keys() == [r["sighting_key"] for r in slow.rows["pending"]]
            pending = [row for w in columnar for row in _pending(w)]
            hosts = {row["host"] for row in pending}
            assert {"example.com", "host.example.org", "2001:db8::1", "xn--r8jz45g.jp"} <= hosts
            assert any(json.loads(row["extra"]).get("note") for row in pending)
            assert sum(len(w.bad) for w in columnar) >= 6  # ftp, empty, none, [, js, no host


def test_manifests_that_may_name_files_keep_the_generic_path(tmp_path: Path) -> None:
    with_path = tmp_path / "p.csv"
    with_path.write_text("url,path\nhttps://a.example/x.jpg,x.jpg\n", encoding="utf-8")
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"url": "https://a.example/x.jpg"}\n', encoding="utf-8")
    repeated = tmp_path / "r.csv"
    repeated.write_text("url,url\nhttps://a.example/x.jpg,https://b.example/y.jpg\n")
    for path in (with_path, jsonl, repeated):
        assert manifest_url_batches(path, 10) is None


def test_ingest_writes_the_generic_rows_in_order(
    cli: Cli, catalog_url: str, tmp_path: Path
) -> None:
    manifest = _parquet(tmp_path / "laion.parquet")
    first = json.loads(cli("ingest", str(manifest), "--workers", "1", "--json").stdout)
    expected = [
        row
        for window in _generic(manifest, 20_000, None, "laion")
        for row in window.rows["pending"] + window.rows["bad"]
    ]
    engine = make_engine(catalog_url)
    with engine.connect() as conn:
        stored = list(conn.execute(select(Sighting.__table__).order_by(Sighting.id)).mappings())
    engine.dispose()
    skip = {"id", "run_id", "seen_at"}
    unique = list({row["sighting_key"]: row for row in reversed(expected)}.values())[::-1]
    assert [{k: v for k, v in r.items() if k not in skip} for r in stored] == [
        {k: v for k, v in r.items() if k not in skip} for r in unique
    ]
    assert first["pending_fetch"] == sum(r["status"] == "pending" for r in unique)
    again = json.loads(cli("ingest", str(manifest), "--workers", "1", "--json").stdout)
    assert again["sightings_new"] == 0 and again["pending_fetch"] == 0
