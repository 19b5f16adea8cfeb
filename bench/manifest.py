"""Manifest ingest rate: a LAION-style Parquet of URL rows into SQLite, streamed in batches.

    python bench/manifest.py [--rows 1000000]

Prints rows/s for `provenance ingest manifest.parquet` with the default workers (one per core:
rows are prepared in a child process while the parent writes) against the target >= 100,000
rows/s, the ratio against a bare executemany of the same number of rows into a table with no
indexes (the floor that any catalog write pays) measured in the same run, and peak memory (RSS)
of the ingest and of its child, which must stay flat as rows grow (compare --rows 200000 and
1000000; SQLite's page cache is capped at 256 MiB).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.migrate import upgrade
from provenance.services.ingest import IngestOptions, run_ingest

LICENSES = [
    "",
    "CC BY 4.0",
    "https://creativecommons.org/licenses/by-nc-sa/3.0/",
    "cc0",
    "MIT",
    "?",
]
WORDS = ["a", "photo", "of", "the", "red", "blue", "cat", "dog", "house", "tree", "car", "over", "on", "in", "with", "small", "large", "old", "new"]


def make_manifest(path: Path, rows: int) -> None:
    rng = random.Random(1)
    # Hosts follow a heavy-tailed distribution as in LAION (a few CDNs hold most URLs):
    # 50,000 hosts under 20,000 registrable domains, weights ~ 1/rank.
    hosts = [f"img{i % 7}.site{i % 20000}.com" for i in range(50_000)]
    weights = [1 / (rank + 1) for rank in range(len(hosts))]
    writer = None
    batch = 100_000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        chosen = rng.choices(hosts, weights=weights, k=n)
        urls = [
            f"https://{host}/media/{start + i}/{rng.getrandbits(40):x}.jpg"
            for i, host in enumerate(chosen)
        ]
        texts = [" ".join(rng.choices(WORDS, k=rng.randint(5, 14))) for _ in range(n)]
        lic = [rng.choice(LICENSES) for _ in range(n)]
        sim = [rng.random() for _ in range(n)]
        table = pa.table({"URL": urls, "TEXT": texts, "LICENSE": lic, "similarity": sim})
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def bare_executemany(path: Path, rows: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (url TEXT, caption TEXT, license TEXT)")
    start = time.perf_counter()
    pfile = pq.ParquetFile(path.parent / "m.parquet")
    for batch in pfile.iter_batches(batch_size=20_000):
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)",
            zip(*(batch.column(i).to_pylist() for i in range(3)), strict=True),
        )
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        manifest = tmp / "m.parquet"
        make_manifest(manifest, args.rows)
        url = f"sqlite:///{tmp / 'c.db'}"
        engine = make_engine(url, create_dirs=True)
        upgrade(engine)
        engine.dispose()
        # Untimed: write back what generating the manifest (and earlier runs) left dirty, so
        # the ingest is not timed against the kernel flushing someone else's pages.
        os.sync()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        summary = run_ingest(
            Settings(db_url=url, store_dir=tmp / "o"), IngestOptions(sources=[manifest])
        )
        t_ingest = time.perf_counter() - start
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        os.sync()
        t_bare = bare_executemany(tmp / "bare.db", args.rows)
    assert summary.pending_fetch == args.rows, summary.to_json()
    print(f"{args.rows} manifest rows (Parquet, LAION columns)")
    print(
        f"provenance ingest: {t_ingest:6.2f} s  {args.rows / t_ingest:9.0f} rows/s (target >= 100,000)"
    )
    print(
        f"bare executemany, 3 columns, no indexes: {t_bare:6.2f} s  {args.rows / t_bare:9.0f} rows/s"
    )
    print(f"ratio bare / ingest time: {t_ingest / t_bare:.2f}x slower than the floor")
    print(f"peak RSS {rss_after / 1024:.0f} MiB (before ingest {rss_before / 1024:.0f} MiB); "
          f"row-preparing child process {rss_child / 1024:.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
