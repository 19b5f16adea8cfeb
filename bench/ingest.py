"""Ingest throughput against a naive baseline, measured in the same run.

    python bench/ingest.py [--count 2000]

Prints, for N generated 800x600 JPEGs (~100 KB):
- baseline: one process, imagehash.phash on a full decode, one ORM add+commit per image;
- hashing alone: the same analysis `provenance ingest` does (sha256, draft pHash, embedded
  signals) in 2 processes, writing nothing;
- provenance ingest --workers 2 on SQLite;
and the ratios: ingest / baseline (target >= 4x), ingest time over hashing-alone time (catalog
writing overhead, target <= 15%). Also how far the draft pHash is from the full-decode pHash.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import imagehash
from PIL import Image
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _images import image_folder

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.migrate import upgrade
from provenance.db.models import Image as ImageRow
from provenance.db.models import Sighting
from provenance.ingest.analyze import DEFAULT_MAX_BYTES, analyze_location
from provenance.services.ingest import IngestOptions, run_ingest


def fresh_catalog(tmp: Path, name: str) -> str:
    url = f"sqlite:///{tmp / name}"
    engine = make_engine(url, create_dirs=True)
    upgrade(engine)
    engine.dispose()
    return url


def baseline(files: list[Path], url: str) -> float:
    engine = make_engine(url)
    start = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        with Image.open(path) as img:
            phash = str(imagehash.phash(img))
            width, height = img.size
        now = datetime.now(UTC)
        with Session(engine) as session:
            session.add(
                ImageRow(
                    sha256=sha,
                    byte_size=len(data),
                    decode_ok=True,
                    phash=phash,
                    phash_alg="phash64-full",
                    width=width,
                    height=height,
                    format="jpeg",
                    first_seen_at=now,
                )
            )
            session.add(
                Sighting(
                    sighting_key=sha,
                    image_sha256=sha,
                    status="ok",
                    origin_kind="file",
                    origin=str(path),
                    seen_at=now,
                )
            )
            session.commit()
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def hashing_alone(files: list[Path], workers: int) -> float:
    jobs = [(str(p), None, None, DEFAULT_MAX_BYTES, True) for p in files]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for _ in pool.imap(analyze_location, jobs, chunksize=8):
            pass
    return time.perf_counter() - start


def provenance_ingest(folder: Path, url: str, tmp: Path, workers: int) -> float:
    settings = Settings(db_url=url, store_dir=tmp / "objects")
    start = time.perf_counter()
    summary = run_ingest(settings, IngestOptions(sources=[folder], workers=workers))
    elapsed = time.perf_counter() - start
    assert summary.images_new == len(list(folder.glob("*.jpg"))), summary
    return elapsed


def phash_agreement(files: list[Path]) -> tuple[int, int, int]:
    """(same, within 2 bits, max distance) of draft pHash vs full-decode pHash."""
    same = close = worst = 0
    for path in files:
        with Image.open(path) as img:
            full = imagehash.phash(img)
        with Image.open(path) as img:
            img.draft("L", (32, 32))
            draft = imagehash.phash(img)
        d = full - draft
        same += d == 0
        close += d <= 2
        worst = max(worst, d)
    return same, close, worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = image_folder(args.count)
    files = sorted(folder.glob("*.jpg"))
    size = sum(p.stat().st_size for p in files) / len(files)
    print(f"{len(files)} JPEGs, 800x600, mean {size / 1024:.0f} KiB")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        t_base = baseline(files, fresh_catalog(tmp, "base.db"))
        t_hash = hashing_alone(files, args.workers)
        t_ingest = provenance_ingest(folder, fresh_catalog(tmp, "ingest.db"), tmp, args.workers)
    n = len(files)
    print(
        f"baseline (1 process, full-decode phash, ORM commit per image): {t_base:6.2f} s  {n / t_base:7.0f} img/s"
    )
    print(
        f"hashing alone ({args.workers} processes, no catalog):            {t_hash:6.2f} s  {n / t_hash:7.0f} img/s"
    )
    print(
        f"provenance ingest --workers {args.workers}:                          {t_ingest:6.2f} s  {n / t_ingest:7.0f} img/s"
    )
    print(f"ratio ingest vs baseline: {t_base / t_ingest:.2f}x (target >= 4x)")
    print(
        f"catalog writing overhead over hashing alone: {100 * (t_ingest / t_hash - 1):+.1f}% (target <= 15%)"
    )
    same, close, worst = phash_agreement(files[:200])
    print(
        f"draft pHash vs full decode on 200 images: identical {same}, within 2 bits {close}, max {worst} bits"
    )


if __name__ == "__main__":
    main()
