"""Audit throughput against `sha256sum` over the same tar files, measured in the same run.

    python bench/audit.py [--count 20000] [--per-shard 1000] [--repeat 2]

Makes `count` generated 800x600 JPEGs (~100 KB) once, straight into WebDataset shards in our
export layout (`<sha256>.jpg/.json/.txt`) under bench/out/, and ingests them once into a SQLite
catalog beside them so every sample is known. Then, page cache warm, alternately runs
`sha256sum` over the tar files and `provenance audit` (service call, permissive bench policy:
every sample is looked up and decided) and prints the best time of each and the ratio
audit throughput / sha256sum throughput (target >= 0.7x).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _images import OUT, photo_like_jpeg

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.migrate import upgrade
from provenance.services.audit import run_audit
from provenance.services.ingest import IngestOptions, run_ingest

POLICY = """\
name = "bench-permissive"
description = "Benchmark only: CC BY; no signal required."

[licenses]
allow = ["cc-by"]
attribution = true

[signals]
tokens = ["provenance-bot"]
count = []
"""


def _shard(args: tuple[Path, int, int]) -> None:
    path, first, count = args
    tmp = path.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for seed in range(first, first + count):
            data = photo_like_jpeg(seed)
            key = hashlib.sha256(data).hexdigest()
            meta = json.dumps({"license": "CC-BY-4.0", "url": f"https://bench.example/{seed}.jpg"})
            for ext, body in (("jpg", data), ("json", meta.encode()), ("txt", b"a picture")):
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
    tmp.rename(path)


def make_shards(count: int, per_shard: int) -> Path:
    folder = OUT / f"audit-shards-{count}"
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"bench-{i // per_shard:06d}.tar", i, min(per_shard, count - i))
            for i in range(0, count, per_shard)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_shard, [j for j in jobs if not j[0].exists()])
    marker.write_text("ok")
    return folder


def catalog_for(folder: Path) -> Settings:
    db = folder.parent / f"{folder.name}.db"
    settings = Settings(db_url=f"sqlite:///{db}", store_dir=folder.parent / "audit-objects")
    marker = folder.parent / f"{folder.name}.db.complete"
    if not marker.exists():
        db.unlink(missing_ok=True)
        engine = make_engine(settings.db_url, create_dirs=True)
        upgrade(engine)
        engine.dispose()
        run_ingest(settings, IngestOptions(sources=[folder], workers=2))
        marker.write_text("ok")
    return settings


def time_sha256sum(tars: list[Path]) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, tars)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_audit(settings: Settings, folder: Path, policy: Path, count: int) -> float:
    start = time.perf_counter()
    report = run_audit(settings, [folder], policy)
    elapsed = time.perf_counter() - start
    assert (report.samples, report.ok) == (count, count), (report.samples, report.ok,
                                                           report.violations[:3])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    folder = make_shards(args.count, args.per_shard)
    settings = catalog_for(folder)
    policy = OUT / "audit-bench-policy.toml"
    policy.write_text(POLICY)
    tars = sorted(folder.glob("*.tar"))
    total = sum(p.stat().st_size for p in tars)
    print(f"{args.count} samples in {len(tars)} shards, {total / 1e6:.0f} MB; catalog "
          f"{settings.db_url}")
    time_sha256sum(tars)  # warm the page cache: both sides then read from memory
    t_sum = min(time_sha256sum(tars) for _ in range(args.repeat))
    t_audit = min(time_audit(settings, folder, policy, args.count) for _ in range(args.repeat))
    mb = total / 1e6
    print(f"sha256sum over the tars:  {t_sum:6.2f} s  {mb / t_sum:7.0f} MB/s  "
          f"{args.count / t_sum:7.0f} samples/s")
    print(f"provenance audit:         {t_audit:6.2f} s  {mb / t_audit:7.0f} MB/s  "
          f"{args.count / t_audit:7.0f} samples/s")
    print(f"ratio audit / sha256sum throughput: {t_sum / t_audit:.2f}x (target >= 0.7x)")


if __name__ == "__main__":
    main()
