"""Policy evaluation over a large generated catalog on SQLite.

Builds (or reuses) a catalog of N images (default 1,000,000) with 1-2 sightings each, image-level
C2PA/IPTC observations, per-URL robots and X-Robots-Tag observations, host-level TDMRep/ai.txt
observations, a few opt-outs and a blocklist, then times `evaluate_catalog` with the shipped
strict policy against a bare `SELECT count(*)` scan measured in the same run. The bulk signal
inserts fill `signals_current` through the same trigger every writer goes through; a catalog
built before revision 0002 (or 0003, which adds the rank fields) is backfilled by the upgrade
below. The evaluation runs as concurrent sha256 ranges (`evaluation_workers`); its process CPU
time and the load average are printed too, since other work on the machine shares the cores.

    python bench/policy.py [--images N] [--db PATH] [--policy FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import (
    Blocklist,
    BlocklistEntry,
    Image,
    OptOutMatch,
    OptOutRequest,
    Sighting,
    SignalObservation,
)
from provenance.policy import default_policy_path, load_policy
from provenance.services.policy import evaluate_catalog, evaluation_workers

NOW = datetime(2026, 11, 25, tzinfo=UTC)
BATCH = 50_000
HOSTS = 20_000
TOKENS = ",gptbot,ccbot,provenance-bot,google-extended,anthropic-ai,claudebot,"
# Every signal row names the token columns: an executemany takes its columns from the first row,
# so a token-less first row would silently drop the robots rows' token lists.
NO_TOKENS: dict[str, Any] = {"tokens_reserved": None, "tokens_unknown": None,
                             "tokens_allowed": None}


def _cpu() -> float:
    """CPU seconds of this process and of its ended children (the forked range scans)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _sha(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


def _flush(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(table.__table__.insert(), rows)
        rows.clear()


def build(engine: Engine, n: int) -> None:
    rng = random.Random(7)
    images: list[dict[str, Any]] = []
    sightings: list[dict[str, Any]] = []
    signals: list[dict[str, Any]] = []
    sid = oid = 0
    recent = NOW - timedelta(days=3)
    for i in range(n):
        sha = _sha(i)
        images.append({"sha256": sha, "byte_size": 100_000, "decode_ok": True,
                       "phash": f"{rng.getrandbits(64):016x}", "width": 800, "height": 600,
                       "format": "JPEG", "first_seen_at": recent})
        for kind in ("c2pa", "iptc"):
            oid += 1
            signals.append({"id": oid, "scope": "image", "subject": sha, "kind": kind,
                            "status": "allowed", "observed_at": recent, **NO_TOKENS})
        for _ in range(1 + (i % 2)):
            sid += 1
            host = f"h{rng.randrange(HOSTS)}.example.com"
            url = f"https://{host}/img/{sid}.jpg"
            sightings.append({
                "id": sid, "sighting_key": f"{sid:016x}", "image_sha256": sha, "status": "ok",
                "url": url, "host": host, "domain": "example.com", "source_name": "crawl",
                "origin_kind": "manifest-row", "origin": f"row {sid}",
                "license_spdx": rng.choice(["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0", None]),
                "caption": "a picture", "seen_at": recent})
            oid += 1
            reserved = rng.random() < 0.1
            signals.append({"id": oid, "scope": "url", "subject": url, "kind": "robots",
                            "status": "reserved" if reserved else "allowed",
                            "tokens_reserved": ",gptbot," if reserved else ",",
                            "tokens_unknown": ",", "tokens_allowed": TOKENS,
                            "observed_at": recent})
        if len(images) >= BATCH:
            _flush(engine, Image, images)
            _flush(engine, Sighting, sightings)
            _flush(engine, SignalObservation, signals)
    _flush(engine, Image, images)
    _flush(engine, Sighting, sightings)
    for h in range(HOSTS):
        for kind in ("tdmrep", "ai-txt", "x-robots-tag", "content-signal", "content-usage",
                     "rsl"):
            oid += 1
            signals.append({"id": oid, "scope": "host", "subject": f"h{h}.example.com",
                            "kind": kind, "status": "allowed", "observed_at": recent, **NO_TOKENS})
    _flush(engine, SignalObservation, signals)
    with engine.begin() as conn:
        conn.execute(OptOutRequest.__table__.insert(), [{
            "id": 1, "requester": "artist", "received_at": recent, "recorded_at": recent,
            "scope_kind": "domain", "scope_value": "h1.example.com", "status": "active"}])
        conn.execute(OptOutMatch.__table__.insert(), [
            {"request_id": 1, "image_sha256": _sha(i), "how": "sha256", "matched_at": recent}
            for i in range(0, n, 997)])
        conn.execute(Blocklist.__table__.insert(), [{
            "id": 1, "name": "court-list", "version": "2026-11", "imported_at": recent,
            "entries": 100}])
        conn.execute(BlocklistEntry.__table__.insert(), [
            {"list_id": 1, "kind": "domain", "value": f"h{h}.example.com"}
            for h in range(0, HOSTS, HOSTS // 100)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/provenance-bench-policy.db"))
    parser.add_argument("--policy", type=Path, default=default_policy_path())
    args = parser.parse_args()
    url = f"sqlite:///{args.db}"
    engine = make_engine(url, create_dirs=True)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(Image.__table__)).scalar_one()
        tokened = conn.execute(select(SignalObservation.tokens_allowed)
                               .where(SignalObservation.tokens_allowed.isnot(None)).limit(1)).first()
    if have != args.images or tokened is None:  # rebuild catalogs from the token-less builder
        engine.dispose()
        args.db.unlink(missing_ok=True)
        engine = make_engine(url, create_dirs=True)
        migrate.upgrade(engine)
        started = time.perf_counter()
        build(engine, args.images)
        print(f"built {args.images:,} images in {time.perf_counter() - started:.1f} s")
    policy = load_policy(args.policy)
    with engine.connect() as conn:
        started = time.perf_counter()
        count = conn.execute(select(func.count()).select_from(Image.__table__)).scalar_one()
        baseline = time.perf_counter() - started
    started, cpu = time.perf_counter(), _cpu()
    result = evaluate_catalog(engine, policy, NOW)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    print(f"SELECT count(*) over {count:,} images: {baseline:.3f} s")
    print(f"policy eval ({policy.name}): {elapsed:.2f} s ({cpu:.2f} s CPU, "
          f"{evaluation_workers(engine)} ranges, load average {os.getloadavg()[0]:.2f}), "
          f"{result.total:,} images, {len(result.included):,} included, "
          f"{result.excluded_total:,} excluded")
    print(f"excluded by reason: {dict(sorted(result.excluded.items()))}")
    print(f"ratio eval / count(*): {elapsed / baseline:.0f}x (target: eval <= 10 s)")
    engine.dispose()


if __name__ == "__main__":
    main()
