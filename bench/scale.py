"""Scale-out benchmarks on PostgreSQL (not part of the test suite).

1. Manifest ingest of ROWS URL rows: the COPY staging path vs the batched multi-row INSERT
   path, measured in the same run on fresh schemas; the time inside the catalog writes is
   reported apart from the rest (reading and preparing rows in Python). Also the on-disk size
   per sighting row (pg_total_relation_size), for docs/scale.md's LAION-5B sizing.
2. Ingest and export of IMAGES images: `--engine ray --partitions 2` vs one process (Ray's
   start-up measured and reported separately).

    PROVENANCE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python bench/scale.py --rows 1000000 --images 10000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

import provenance.db.engine as engine_mod
from provenance.config import Settings
from provenance.db import migrate
from provenance.db.catalog import insert_sighting_columns, start_run
from provenance.db.engine import make_engine
from provenance.domain import utcnow
from provenance.engine import EngineChoice
from provenance.ingest.background import UrlManifestJob, prepare_inline
from provenance.ingest.rows import PreparedWindow
from provenance.samples import image_bytes
from provenance.services.export import ExportOptions, run_export
from provenance.services.ingest import ROWS_BATCH, IngestOptions, run_ingest
from provenance.services.scale import export_partitioned, ingest_partitioned

PG = os.environ.get("PROVENANCE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
POLICY = """name = "bench"
[licenses]
allow = ["cc-by", "cc0"]
[signals]
tokens = ["provenance-bot"]
count = []
"""


@contextmanager
def schema() -> Iterator[str]:
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    parsed = make_url(PG)
    url = parsed.set(query={**parsed.query, "options": f"-csearch_path={name}"})
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def write_manifest(path: Path, rows: int) -> None:
    """LAION-like rows: ~100-char URLs over many hosts, ~60-char captions, a license."""
    with open(path, "w") as fh:
        fh.write("url,caption,license\n")
        for k in range(rows):
            fh.write(
                f"https://i{k % 9973}.img-cdn{k % 13}.example.com/images/2021/{k % 997:03d}/"
                f"{k:010d}/original-large-photo-{k % 31}.jpg,"
                f"A photograph of item {k} on a wooden table in warm afternoon light,"
                "CC-BY-4.0\n"
            )


def ingest_wall(manifest: Path, rows: int, copy: bool, store: Path) -> tuple[float, int]:
    """Full `ingest` of the manifest: (wall seconds, bytes of the sightings table)."""
    engine_mod.COPY_THRESHOLD = 1000 if copy else 10**12
    with schema() as url:
        start = time.perf_counter()
        # Default workers (one per core): a large manifest is prepared in a child process.
        summary = run_ingest(Settings(url, store), IngestOptions([manifest]))
        wall = time.perf_counter() - start
        assert summary.sightings_new == rows, summary
        engine = make_engine(url)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_total_relation_size('sightings')")).scalar_one()
        engine.dispose()
    return wall, int(size)


def prepared(manifest: Path) -> tuple[list[PreparedWindow], float, float]:
    """The windows ingest would write (run id 1 of a fresh schema), and the wall and CPU
    seconds spent reading and preparing them in this process."""
    start, cpu = time.perf_counter(), time.process_time()
    job = UrlManifestJob(manifest.resolve(), None, None, "bench", 1, None, ROWS_BATCH)
    windows = prepare_inline(job)
    assert windows is not None
    out = list(windows)
    return out, time.perf_counter() - start, time.process_time() - cpu


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine, if readable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_only(windows: list[PreparedWindow], copy: bool) -> tuple[float, float, float | None]:
    """(wall, client CPU, server CPU) seconds to write prepared windows, one transaction each,
    through the column path ingest uses (COPY from COPY_THRESHOLD rows on, multi-row INSERTs
    below). Server CPU is the backend's, read from /proc when PostgreSQL runs on this machine."""
    engine_mod.COPY_THRESHOLD = 1000 if copy else 10**12
    with schema() as url:
        engine = make_engine(url)  # one connection: used one transaction at a time
        with engine.begin() as conn:
            start_run(conn, "ingest", utcnow())
            pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        server = _backend_cpu(pid)
        start, cpu = time.perf_counter(), time.process_time()
        for window in windows:
            with engine.begin() as conn:
                insert_sighting_columns(conn, window.pending_columns, window.pending_shared)
        spent, client = time.perf_counter() - start, time.process_time() - cpu
        after = _backend_cpu(pid)
        engine.dispose()
    return spent, client, (after - server) if after is not None and server is not None else None


def bench_manifest(rows: int, batched_rows: int, tmp: Path) -> None:
    manifest = tmp / "manifest.csv"
    write_manifest(manifest, rows)
    small = tmp / "small.csv"
    write_manifest(small, batched_rows)
    copy_wall, size = ingest_wall(manifest, rows, True, tmp / "o1")
    batch_wall, _ = ingest_wall(small, batched_rows, False, tmp / "o2")
    copy_small, _ = ingest_wall(small, batched_rows, True, tmp / "o3")
    windows, prep, prep_cpu = prepared(manifest)
    copy_write, client_cpu, server_cpu = write_only(windows, True)
    batch_write = write_only(windows[: max(1, batched_rows // ROWS_BATCH)], False)[0]
    print("manifest ingest into PostgreSQL (`provenance ingest` service, default workers):")
    print(f"  COPY path, {rows:,} rows   : {copy_wall:7.1f} s = {rows / copy_wall:9,.0f} rows/s")
    print(f"  COPY path, {batched_rows:,} rows   : {copy_small:7.1f} s = "
          f"{batched_rows / copy_small:9,.0f} rows/s")
    print(f"  batched path, {batched_rows:,} rows: {batch_wall:7.1f} s = "
          f"{batched_rows / batch_wall:9,.0f} rows/s")
    print(f"  ratio COPY/batched (same {batched_rows:,} rows): {batch_wall / copy_small:.2f}x")
    print(f"where the time goes ({rows:,} rows):")
    print(f"  read + prepare rows in Python: {prep:7.1f} s = {rows / prep:9,.0f} rows/s")
    print(f"  write only, COPY             : {copy_write:7.1f} s = "
          f"{rows / copy_write:9,.0f} rows/s")
    print(f"  write only, batched ({batched_rows:,})  : {batch_write:7.1f} s = "
          f"{batched_rows / batch_write:9,.0f} rows/s  -> COPY is "
          f"{(rows / copy_write) / (batched_rows / batch_write):.1f}x")
    per_row = [prep_cpu / rows * 1e6, client_cpu / rows * 1e6]
    if server_cpu is not None:
        per_row.append(server_cpu / rows * 1e6)
        cores = os.cpu_count() or 1
        print(f"  CPU per row: prepare {per_row[0]:.1f} us + COPY client {per_row[1]:.1f} us + "
              f"PostgreSQL backend {per_row[2]:.1f} us = {sum(per_row):.1f} us; on {cores} cores "
              f"no schedule exceeds {cores / sum(per_row) * 1e6:,.0f} rows/s")
    print(f"  sightings on disk (pg_total_relation_size): {size:,} bytes = "
          f"{size / rows:.0f} bytes/row; x 5.85e9 rows = {size / rows * 5.85e9 / 1e12:.2f} TB")


def make_images(folder: Path, count: int) -> None:
    for k in range(count):
        sub = folder / f"part{k % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{k:06d}.jpg"
        path.write_bytes(image_bytes(k, (64 + k % 7, 48), "JPEG"))
        path.with_suffix(".json").write_text(
            f'{{"url": "https://h{k % 50}.example/{k}.jpg", "license": "CC-BY-4.0"}}')


def images_run(folder: Path, tmp: Path, choice: EngineChoice | None) -> tuple[float, float]:
    """(ingest seconds, export seconds) on a fresh schema."""
    policy = tmp / "policy.toml"
    policy.write_text(POLICY)
    with schema() as url:
        settings = Settings(url, tmp / f"objects-{uuid.uuid4().hex[:6]}")
        out = tmp / f"out-{uuid.uuid4().hex[:6]}"
        opts = IngestOptions([folder], workers=2 if choice is None else 1)
        export = ExportOptions(policy, out, shard_size=1000)
        start = time.perf_counter()
        if choice is None:
            run_ingest(settings, opts)
        else:
            ingest_partitioned(settings, opts, choice)
        ingest = time.perf_counter() - start
        start = time.perf_counter()
        if choice is None:
            run_export(settings, export)
        else:
            export_partitioned(settings, export, choice)
        return ingest, time.perf_counter() - start


def bench_images(count: int, tmp: Path) -> None:
    import ray

    folder = tmp / "images"
    make_images(folder, count)
    local_ingest, local_export = images_run(folder, tmp, None)
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    ray_ingest, ray_export = images_run(folder, tmp, EngineChoice("ray", 2))
    ray.shutdown()
    print(f"{count:,} images, PostgreSQL, 2 cores:")
    print(f"  one process (2 hashing workers): ingest {local_ingest:6.1f} s, "
          f"export {local_export:6.1f} s")
    print(f"  --engine ray --partitions 2     : ingest {ray_ingest:6.1f} s, "
          f"export {ray_export:6.1f} s  (Ray start-up {startup:.1f} s, not included)")
    print(f"  ratio ray/local: ingest {ray_ingest / local_ingest:.2f}x, "
          f"export {ray_export / local_export:.2f}x, "
          f"both {(ray_ingest + ray_export) / (local_ingest + local_export):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batched-rows", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--skip-manifest", action="store_true")
    parser.add_argument("--skip-images", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_manifest:
            bench_manifest(args.rows, min(args.rows, args.batched_rows), Path(tmp))
        if not args.skip_images:
            bench_images(args.images, Path(tmp))


if __name__ == "__main__":
    main()
