"""Opt-out benchmarks (not part of the test suite).

1. Perceptual lookup over 1,000,000 catalogued 64-bit pHashes (PHashIndex, numpy popcount)
   against a pure-Python brute-force scan measured in the same run; answers must be equal.
2. `optout import` of 100,000 domain / URL-prefix requests against 1,000,000 sightings on
   SQLite (set-based matching), wall-clock.
3. The distance measurement behind DEFAULT_MAX_DISTANCE (copies vs unrelated pictures).

    python bench/optout.py [--hashes 1000000] [--sightings 1000000] [--requests 100000]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from provenance.config import Settings
from provenance.db import catalog as db
from provenance.domain import utcnow
from provenance.ingest.analyze import analyze_bytes
from provenance.optout import DEFAULT_MAX_DISTANCE
from provenance.phash_index import PHashIndex, crop_probes, distances, hex_to_int
from provenance.samples import image_bytes, make_image
from provenance.services.catalog import init_catalog
from provenance.services.optout import import_requests


def bench_lookup(n: int) -> None:
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, size=n, dtype=np.uint64) * np.uint64(2)
    probe = int(hashes[12345]) ^ 0b1011  # 3 bits from one catalogued hash
    hashes[777_777 % n] = np.uint64(probe ^ (1 << 40))
    keys = [f"{i:064x}" for i in range(n)]
    index = PHashIndex(keys, hashes)
    index.query(probe, DEFAULT_MAX_DISTANCE)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        got = index.query(probe, DEFAULT_MAX_DISTANCE)
        times.append(time.perf_counter() - t0)
    probes36 = [probe] + [int(x) for x in rng.integers(0, 2**63, size=35, dtype=np.uint64)]
    t0 = time.perf_counter()
    got36 = index.query(probes36, DEFAULT_MAX_DISTANCE)
    t36 = time.perf_counter() - t0
    values = [int(v) for v in hashes]
    t0 = time.perf_counter()
    brute = sorted(
        (
            (k, bin(v ^ probe).count("1"))
            for k, v in zip(keys, values, strict=True)
            if bin(v ^ probe).count("1") <= DEFAULT_MAX_DISTANCE
        ),
        key=lambda item: (item[1], item[0]),
    )
    t_brute = time.perf_counter() - t0
    median = statistics.median(times)
    print(
        f"lookup over {n:,} hashes, k={DEFAULT_MAX_DISTANCE}: median {median * 1000:.2f} ms/query "
        f"(max {max(times) * 1000:.2f}); 36-probe image request {t36 * 1000:.1f} ms"
    )
    print(
        f"  pure-Python brute force (same run, all {n:,}): {t_brute * 1000:.0f} ms/query "
        f"-> index is {t_brute / median:.0f}x faster; same answers: {got == brute} "
        f"({len(got)} hits); 36-probe hits include the planted one: {got36[:1] == got[:1]}"
    )


def _catalog(path: Path, sightings: int, domains: int) -> Settings:
    settings = Settings(db_url=f"sqlite:///{path}", store_dir=path.parent / "objects")
    init_catalog(settings)
    from provenance.db.engine import make_engine

    engine = make_engine(settings.db_url)
    now = utcnow()
    rng = random.Random(5)
    with engine.begin() as conn:
        for start in range(0, sightings, 100_000):
            rows = []
            for i in range(start, min(start + 100_000, sightings)):
                d = i % domains
                host = f"{('cdn', 'www', 'img')[i % 3]}.site{d}.com" if i % 4 else f"site{d}.com"
                url = f"https://{host}/p{rng.randrange(50)}/{i}.jpg"
                rows.append(
                    {
                        "sighting_key": f"{i:064x}",
                        "image_sha256": None,
                        "status": "pending",
                        "url": url,
                        "host": host,
                        "domain": f"site{d}.com",
                        "origin_kind": "manifest-row",
                        "origin": f"m.csv:{i}",
                        "seen_at": now,
                    }
                )
            db.insert_sightings(conn, rows)
    engine.dispose()
    return settings


def bench_import(sightings: int, requests: int) -> None:
    domains = sightings // 50
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        settings = _catalog(Path(tmp) / "catalog.db", sightings, domains)
        print(
            f"built catalog: {sightings:,} sightings on {domains:,} domains in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        lines = ["scope,value,requester"]
        for i in range(requests):
            # 1 in 10 names a catalogued site; the rest are sites the catalog never saw.
            d = i * 7 % domains if i % 10 == 0 else domains + i
            if i % 3 == 0:
                lines.append(f"url-prefix,https://cdn.site{d}.com/p{i % 50}/,registry")
            else:
                lines.append(f"domain,site{d}.com,registry")
        file = Path(tmp) / "registry.csv"
        file.write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        report = import_requests(settings, file, {})
        elapsed = time.perf_counter() - t0
        print(
            f"import of {requests:,} domain/url-prefix requests against {sightings:,} sightings "
            f"(SQLite): {elapsed:.1f} s; {report.imported:,} new, {report.matched:,} matches, "
            f"{report.rejected} rejected (budget 60 s)"
        )
        t0 = time.perf_counter()
        again = import_requests(settings, file, {})
        print(
            f"  re-import (all references exist): {time.perf_counter() - t0:.1f} s, "
            f"{again.imported} new"
        )


def _encode(img: Image.Image, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def bench_distances(requests: int, unrelated: int) -> None:
    others = np.array(
        [
            hex_to_int(analyze_bytes(image_bytes(10_000 + s), embedded=False).phash or "0" * 16)
            for s in range(unrelated)
        ],
        dtype=np.uint64,
    )
    copy_d: list[int] = []
    nearest: list[int] = []
    for seed in range(requests):
        img = make_image(seed, (640, 480))
        w, h = img.size
        probes = [hex_to_int(p) for p in crop_probes(_encode(img))]
        variants = [img.resize((w // 4, h // 4)), img]
        encoded = [
            _encode(variants[0]),
            _encode(img, quality=20),
            _encode(img, quality=50),
            _encode(img, "PNG"),
        ]
        for c in (0.02, 0.035, 0.05):
            dx, dy = round(w * c / 2), round(h * c / 2)
            encoded += [
                _encode(img.crop((dx, dy, w - dx, h - dy))),
                _encode(img.crop((2 * dx, 2 * dy, w, h))),
                _encode(img.crop((0, 0, w - 2 * dx, h))),
            ]
        for data in encoded:
            ph = hex_to_int(analyze_bytes(data, embedded=False).phash or "0" * 16)
            copy_d.append(int(distances(probes, np.array([ph], dtype=np.uint64))[0]))
        nearest.append(int(distances(probes, others).min()))
    hist = np.bincount(copy_d)
    print(
        f"distances: {len(copy_d)} transformed copies (resize, JPEG q20/q50, PNG, crops 2-5%): "
        f"max {max(copy_d)}, histogram {dict(enumerate(hist.tolist()))}"
    )
    print(
        f"  nearest of {unrelated} unrelated pictures to each of {requests} requests: "
        f"min {min(nearest)}, median {statistics.median(nearest)}; default max-distance "
        f"{DEFAULT_MAX_DISTANCE}: misses {sum(d > DEFAULT_MAX_DISTANCE for d in copy_d)}, "
        f"false matches {sum(d <= DEFAULT_MAX_DISTANCE for d in nearest)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--sightings", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--distance-requests", type=int, default=100)
    args = parser.parse_args()
    bench_lookup(args.hashes)
    bench_import(args.sightings, args.requests)
    bench_distances(args.distance_requests, 1000)


if __name__ == "__main__":
    main()
