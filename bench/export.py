"""Export shard-writing throughput against `tar cf` over the same files, in the same run.

    python bench/export.py [--count 20000] [--rounds 3]

Images: `count` ~100 KB JPEGs in bench/out/export-<count>/ (made once, reused): 200 distinct
photo-like pictures, each file made unique by 8 bytes after the JPEG end marker (a decoder
ignores them; the sha256 differs). The catalog (SQLite, in a temporary directory) records every
file as a local sighting under CC0, so the test policy includes them all.

Measured per round, interleaved so that machine load hits both alike:
- baseline: `tar cf` of the folder (reads every file, writes one archive);
- export: `provenance export` (service call): plan, shards of 10,000 samples with the image,
  its JSON and verified sha256, fsync, rename, lineage rows, croissant/attribution/manifest.
  The shard-writing phase (write_slice) is timed on its own as well.
The best round of each is reported (load from other processes only ever adds time).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _images import OUT, photo_like_jpeg  # noqa: E402

from provenance.config import Settings  # noqa: E402
from provenance.db import migrate  # noqa: E402
from provenance.db.catalog import insert_sightings, record_images  # noqa: E402
from provenance.db.engine import make_engine  # noqa: E402
from provenance.db.models import Base  # noqa: E402
from provenance.domain import ImageFacts, utcnow  # noqa: E402
from provenance.ingest.keys import sighting_key  # noqa: E402
from provenance.services import export as export_service  # noqa: E402

POLICY = """\
name = "bench-cc0"
[licenses]
allow = ["cc0"]
[signals]
tokens = ["provenance-bot"]
count = []
"""


def image_dir(count: int) -> Path:
    folder = OUT / f"export-{count}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    bases = [photo_like_jpeg(seed) for seed in range(200)]
    for i in range(count):
        (folder / f"{i:06d}.jpg").write_bytes(bases[i % 200] + i.to_bytes(8, "big"))
    marker.write_text("ok")
    return folder


def build_catalog(db_url: str, folder: Path) -> None:
    engine = make_engine(db_url, create_dirs=True)
    migrate.upgrade(engine)
    now = utcnow()
    columns = [c.name for c in Base.metadata.tables["sightings"].columns if c.name != "id"]
    facts, rows = [], []
    for path in sorted(folder.glob("*.jpg")):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        facts.append(ImageFacts(sha, len(data), True, width=800, height=600, format="jpeg"))
        row = {"sighting_key": sighting_key("bench", str(path)), "image_sha256": sha,
               "status": "ok", "origin_kind": "file", "origin": str(path), "source_name": "bench",
               "license_raw": "CC0-1.0", "license_spdx": "CC0-1.0", "seen_at": now,
               "local_path": str(path), "caption": f"picture {path.stem}"}
        rows.append({c: row.get(c) for c in columns})
    with engine.begin() as conn:
        record_images(conn, facts, None, now)
        for start in range(0, len(rows), 5000):
            insert_sightings(conn, rows[start : start + 5000])
    engine.dispose()


def time_tar(folder: Path, target: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["tar", "cf", str(target), "-C", str(folder.parent), folder.name], check=True)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


class _Timed:
    """Wraps write_slice to time the shard-writing phase alone."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.original = export_service.write_slice

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds = time.perf_counter() - start


def time_export(settings: Settings, policy: Path, out: Path) -> tuple[float, float, int]:
    timed = _Timed()
    export_service.write_slice = timed  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        result = export_service.run_export(
            settings, export_service.ExportOptions(policy, out, "bench", 10_000))
        total = time.perf_counter() - start
    finally:
        export_service.write_slice = timed.original  # type: ignore[assignment]
    assert result.status == "complete", result
    shutil.rmtree(out)
    return total, timed.seconds, result.included


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = image_dir(args.count)
    size = sum(p.stat().st_size for p in folder.glob("*.jpg"))
    print(f"{args.count} images, {size / args.count / 1000:.0f} KB average, "
          f"{size / 1e9:.2f} GB in {folder}")
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        work = Path(tmp)
        settings = Settings(db_url=f"sqlite:///{work / 'catalog.db'}", store_dir=work / "store")
        build_catalog(settings.db_url, folder)
        policy = work / "policy.toml"
        policy.write_text(POLICY)
        tars, exports, writes = [], [], []
        for n in range(args.rounds):
            # A fresh catalog row each round: a new --out means a new export.
            tars.append(time_tar(folder, work / "baseline.tar"))
            total, writing, included = time_export(settings, policy, work / f"export-{n}")
            assert included == args.count
            exports.append(total)
            writes.append(writing)
            print(f"round {n}: tar cf {tars[-1]:.2f} s, export {total:.2f} s "
                  f"(shard writing {writing:.2f} s)")
    tar_best, export_best, write_best = min(tars), min(exports), min(writes)
    print(f"tar cf:         {tar_best:.2f} s  {size / tar_best / 1e6:.0f} MB/s")
    print(f"shard writing:  {write_best:.2f} s  {size / write_best / 1e6:.0f} MB/s  "
          f"ratio to tar cf {tar_best / write_best:.2f}x (target >= 0.8x)")
    print(f"whole export:   {export_best:.2f} s  {size / export_best / 1e6:.0f} MB/s  "
          f"ratio to tar cf {tar_best / export_best:.2f}x")


if __name__ == "__main__":
    main()
