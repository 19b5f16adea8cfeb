"""Benchmark: `report training-summary` over an export of N images on SQLite (default 1,000,000).

Builds the catalog with driver-level executemany (images, one sighting each over 20,000
crawled domains and three other sources, fetch attempts for the crawled ones, one export with
every image a member), then times the whole summary (aggregate SQL, rendering, event, files)
against a baseline measured in the same run: one bare aggregate pass over the same members
(count and bytes), the least any exact summary must do.

    python bench/summary.py [--images N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from provenance.config import Settings
from provenance.services.catalog import init_catalog
from provenance.services.summary import training_summary

ABOUT = """
[provider]
name = "Bench"
contact = "bench@example.com"
[model]
name = "BenchModel"
version = "1"
sme = false
training_continues = false
[sources]
"crawl" = "own-crawl"
"laion" = "public-dataset"
"stock" = "licensed"
"synth" = "synthetic"
"""
SOURCES = ("crawl", "crawl", "laion", "stock", "synth")
UA = "provenance-bot/0.1 (+https://example.com/bot)"


def build(db: Path, n: int) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    t = "2026-03-01 00:00:00.000000"
    keys = [hashlib.sha256(i.to_bytes(8, "big")).hexdigest() for i in range(n)]
    conn.executemany(
        "INSERT INTO images (sha256, byte_size, decode_ok, first_seen_at) VALUES (?, ?, 1, ?)",
        ((k, 50_000 + (i * 7919) % 100_000, t) for i, k in enumerate(keys)))

    def sighting(i: int, k: str) -> tuple[object, ...]:
        source = SOURCES[i % len(SOURCES)]
        domain = f"site{(i * 31) % 20_000}.example"
        host = f"img.{domain}"
        fetched = t if source == "crawl" else None
        return (hashlib.sha256(f"s{i}".encode()).hexdigest()[:64], k, "ok",
                f"https://{host}/{i}.jpg", host, domain, source, "manifest-row", f"row {i}",
                "CC-BY-4.0" if i % 3 else None, "a caption" if i % 2 else None, t, fetched)

    conn.executemany(
        "INSERT INTO sightings (sighting_key, image_sha256, status, url, host, domain, "
        "source_name, origin_kind, origin, license_spdx, caption, seen_at, fetched_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (sighting(i, k) for i, k in enumerate(keys)))
    conn.executemany(
        "INSERT INTO fetch_attempts (sighting_id, url, attempted_at, outcome, user_agent, "
        "image_sha256) VALUES (?, ?, ?, 'fetched', ?, ?)",
        ((i + 1, f"https://x/{i}.jpg", t, UA, k) for i, k in enumerate(keys)
         if SOURCES[i % len(SOURCES)] == "crawl"))
    conn.execute(
        "INSERT INTO exports (id, name, status, out_dir, policy_name, policy_sha256, policy_text,"
        " included, excluded, created_at) VALUES (1, 'bench', 'complete', '/x', 'p', ?, ?, ?, "
        "'{\"near-duplicate\": 3}', '2026-04-01 00:00:00.000000')",
        ("0" * 64, 'name = "p"\n[licenses]\nallow = ["cc-by"]\n[signals]\ntokens = ["x"]\n', n))
    conn.executemany(
        "INSERT INTO export_members (export_id, image_sha256, shard_index, position) "
        "VALUES (1, ?, ?, ?)", ((k, i // 10_000, i % 10_000) for i, k in enumerate(sorted(keys))))
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def baseline(db: Path) -> float:
    conn = sqlite3.connect(db)
    start = time.perf_counter()
    conn.execute("SELECT count(*), sum(i.byte_size) FROM export_members m "
                 "JOIN images i ON i.sha256 = m.image_sha256 WHERE m.export_id = 1").fetchone()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(db_url=f"sqlite:///{root / 'catalog.db'}", store_dir=root / "objects")
        init_catalog(settings)
        start = time.perf_counter()
        build(root / "catalog.db", args.images)
        print(f"built a catalog of {args.images:,} exported images in "
              f"{time.perf_counter() - start:.1f} s")
        (root / "about.toml").write_text(ABOUT)
        base = baseline(root / "catalog.db")
        start, cpu = time.perf_counter(), time.process_time()
        run = training_summary(settings, [1], root / "about.toml", root / "out")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        top = run.document["sections"]["2.3"]["fields"]["top_domains"]
        print(f"baseline (one count+bytes pass over the members): {base:.2f} s")
        print(f"training-summary: {elapsed:.2f} s for {args.images:,} images "
              f"({top['domains_total']:,} domains, {top['listed']:,} listed); "
              f"{elapsed / base:.1f}x the baseline; {cpu:.2f} s CPU in this process; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
