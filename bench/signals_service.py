"""The signals service layer: full URL verdicts from cached host documents, recording
observations, and the catalog-backed host-document cache.

    python bench/signals_service.py [--hosts 100] [--urls 20000] [--rounds 3]

Sections, each printed against a baseline measured in the same run:
1. URL verdicts: `url_level_signals` (all 7 URL-level kinds, robots.txt + ai.txt + tdmrep.json
   + headers, the full default token list) per URL over 100 cached hosts, against
   `robots_signal` alone for the same URLs and tokens.
2. Recording: `record_observations` of image-scope signals (2 per image, as ingest records
   C2PA + IPTC) on a fresh SQLite catalog, against a bare Core executemany of equal rows.
3. Host-document cache: `host_documents` answered from the catalog (another process's
   observations) and from the in-memory LRU, per lookup. No network is used.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import SignalObservation
from provenance.db.signal_store import record_observations
from provenance.domain import Observation, Scope, Signal, SignalKind, SignalStatus
from provenance.net import SafeHttp
from provenance.services.host_signals import (
    AITXT_PATH,
    ROBOTS_PATH,
    Fetched,
    HostDocCache,
    document_observations,
    host_documents,
)
from provenance.signals.evaluate import url_level_signals
from provenance.signals.robots import parse_robots, robots_signal
from provenance.signals.tdmrep import WELL_KNOWN_PATH, parse_tdmrep
from provenance.signals.tokens import default_tokens

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SECTIONS = ["images", "photos", "media", "blog", "news", "static", "uploads"]
PLAIN_HEADERS = [("Content-Type", "image/jpeg"), ("Content-Length", "81234")]
XRT_HEADERS = [*PLAIN_HEADERS, ("X-Robots-Tag", "googlebot: noindex")]


def robots_text(rng: random.Random, tokens: tuple[str, ...]) -> str:
    lines = ["# generated", "User-agent: *"]
    lines += [f"Disallow: /{rng.choice(SECTIONS)}/private{i}/" for i in range(rng.randint(5, 30))]
    if rng.random() < 0.6:
        lines.append("Content-Signal: search=yes, ai-train=no")
    if rng.random() < 0.3:
        lines.append("Content-Usage: train-ai=n")
    for token in rng.sample(tokens, rng.randint(0, 10)):
        lines += ["", f"User-agent: {token}", "Disallow: /"]
    return "\n".join(lines) + "\n"


def per_second(func: Callable[[], int], rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = func()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_verdicts(hosts: int, urls: int, rounds: int) -> list[str]:
    rng = random.Random(7)
    tokens = default_tokens()
    docs = []
    for h in range(hosts):
        origin = f"https://h{h}.example"
        docs.append(
            (
                origin,
                parse_robots(robots_text(rng, tokens), origin + ROBOTS_PATH),
                parse_robots("User-agent: *\nDisallow: /private/\n", origin + AITXT_PATH),
                parse_tdmrep('[{"location": "/media/*", "tdm-reservation": 1}]', origin),
            )
        )
    work = [
        (docs[rng.randrange(hosts)], f"/{rng.choice(SECTIONS)}/{rng.randrange(10**6)}.jpg")
        for _ in range(urls)
    ]

    def full(headers: list[tuple[str, str]]) -> Callable[[], int]:
        def run() -> int:
            for (origin, robots, aitxt, tdm), path in work:
                url_level_signals(
                    origin + path, tokens, robots=robots, aitxt=aitxt, tdmrep=tdm, rsl_docs={},
                    headers=headers,
                )  # fmt: skip
            return len(work)

        return run

    def robots_only() -> int:
        for (origin, robots, _a, _t), path in work:
            robots_signal(robots, origin + path, tokens)
        return len(work)

    base = per_second(robots_only, rounds)
    plain = per_second(full(PLAIN_HEADERS), rounds)
    xrt = per_second(full(XRT_HEADERS), rounds)
    return [
        f"URL verdicts, {hosts} cached hosts, {len(tokens)} tokens, 7 kinds:",
        f"  robots_signal only (baseline):            {base:,.0f} URLs/s",
        f"  url_level_signals, no X-Robots-Tag:       {plain:,.0f} URLs/s  ({plain / base:.2f}x)",
        f"  url_level_signals, with an X-Robots-Tag:  {xrt:,.0f} URLs/s  ({xrt / base:.2f}x)",
    ]


def fresh_catalog(tmp: Path, name: str) -> Engine:
    engine = make_engine(f"sqlite:///{tmp / name}", create_dirs=True)
    migrate.upgrade(engine)
    return engine


def bench_recording(tmp: Path, images: int) -> list[str]:
    shas = [f"{i:064x}" for i in range(images)]
    observations = [
        Observation(Scope.IMAGE, sha, Signal(kind, SignalStatus.UNKNOWN, "no manifest"), NOW)
        for sha in shas
        for kind in (SignalKind.C2PA, SignalKind.IPTC)
    ]
    rows = [
        {"scope": "image", "subject": o.subject, "kind": str(o.signal.kind), "status": "unknown",
         "detail": "no manifest", "observed_at": NOW}
        for o in observations
    ]  # fmt: skip
    base_engine, store_engine = fresh_catalog(tmp, "base.db"), fresh_catalog(tmp, "store.db")
    start = time.perf_counter()
    with base_engine.begin() as conn:
        conn.execute(SignalObservation.__table__.insert(), rows)
    base = len(rows) / (time.perf_counter() - start)
    start = time.perf_counter()
    with store_engine.begin() as conn:
        record_observations(conn, observations)
    rate = len(observations) / (time.perf_counter() - start)
    base_engine.dispose()
    store_engine.dispose()
    return [
        f"Recording {len(observations):,} image-scope observations (SQLite, one transaction):",
        f"  bare Core executemany (baseline): {base:,.0f} rows/s",
        f"  record_observations:              {rate:,.0f} rows/s  ({rate / base:.2f}x baseline)",
    ]


def bench_cache(tmp: Path, hosts: int, lookups: int) -> list[str]:
    engine = fresh_catalog(tmp, "cache.db")
    tokens = default_tokens()
    rng = random.Random(3)
    origins = [f"https://h{h}.example" for h in range(hosts)]
    with engine.begin() as conn:
        for origin in origins:
            fetched = [
                Fetched(SignalKind.ROBOTS, origin + ROBOTS_PATH, 200,
                        robots_text(rng, tokens).encode(), None),
                Fetched(SignalKind.AI_TXT, origin + AITXT_PATH, 404, b"", None),
                Fetched(SignalKind.TDMREP, origin + WELL_KNOWN_PATH, 404, b"", None),
            ]  # fmt: skip
            obs, raw = document_observations(
                fetched, origin, tokens, NOW, NOW.replace(year=2027), None
            )
            record_observations(conn, obs, raw)
    http = SafeHttp("bench/1.0", allow_private=False)  # never used: every lookup is cached
    order = [origins[rng.randrange(hosts)] for _ in range(lookups)]
    start = time.perf_counter()
    with engine.connect() as conn:
        for origin in order:
            host_documents(conn, http, origin, NOW)
    from_catalog = lookups / (time.perf_counter() - start)
    cache = HostDocCache()
    start = time.perf_counter()
    with engine.connect() as conn:
        for origin in order:
            host_documents(conn, http, origin, NOW, cache=cache)
    with_lru = lookups / (time.perf_counter() - start)
    engine.dispose()
    return [
        f"host_documents lookups, {hosts} hosts cached in the catalog (no network):",
        f"  from the catalog each time (baseline): {from_catalog:,.0f} lookups/s",
        f"  with the in-memory LRU:                {with_lru:,.0f} lookups/s  "
        f"({with_lru / from_catalog:.0f}x baseline)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--urls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=20000)
    args = parser.parse_args()
    for line in bench_verdicts(args.hosts, args.urls, args.rounds):
        print(line)
    with tempfile.TemporaryDirectory() as tmp:
        for line in bench_recording(Path(tmp), args.images):
            print(line)
        for line in bench_cache(Path(tmp), args.hosts, 2000):
            print(line)


if __name__ == "__main__":
    main()
