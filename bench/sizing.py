"""What a fetched URL costs in PostgreSQL: bytes per URL of every table a fetch writes.

bench/scale.py sizes the pending `sightings` row of a manifest URL. Fetching it adds more:
its `fetch_attempts` row, its URL-level `signals` rows (one per signal kind evaluated for the
URL, and the header signals of its response), `signals_current`, the image's `images` row, and
host-level rows (robots.txt, ai.txt, TDMRep, each with its evidence blob) shared by all URLs of
a host. This bench runs the real `ingest` and `fetch` services on a fresh PostgreSQL schema
against local servers on 127.0.0.x (loopback; `allow_private`), every URL serving distinct
image bytes, and reports `pg_total_relation_size` (table, TOAST and indexes) of each table
before and after the fetch, per fetched URL, times 5.85e9 (LAION-5B). Host-level rows are
reported per host (a web-scale crawl has many URLs per host: LAION-5B's are spread over
tens of millions of hosts).

    PROVENANCE_BENCH_PG_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        python bench/sizing.py [--urls 5000] [--hosts 20]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import schema

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.samples import image_bytes
from provenance.services.fetch import FetchOptions, run_fetch
from provenance.services.ingest import IngestOptions, run_ingest

LAION_ROWS = 5.85e9
TABLES = ("sightings", "images", "fetch_attempts", "signals", "signals_current",
          "evidence_blobs", "optout_matches")
BASES = [image_bytes(i, (256, 192)) for i in range(50)]
# A robots.txt of a common shape: a group for AI crawlers, a default group, a sitemap.
ROBOTS = (b"User-agent: GPTBot\nUser-agent: CCBot\nDisallow: /private/\n\n"
          b"User-agent: *\nAllow: /\nDisallow: /admin/\nCrawl-delay: 0\n\n"
          b"Sitemap: https://example.com/sitemap.xml\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: Any) -> None:
        pass

    def do_GET(self) -> None:
        headers = {"Content-Type": "text/plain"}
        if self.path.startswith("/img/"):
            n = int(self.path[5:].split(".")[0])
            # Distinct bytes per URL (a JPEG decoder ignores bytes after its end marker).
            body, status = BASES[n % len(BASES)] + n.to_bytes(8, "big"), 200
            headers = {"Content-Type": "image/jpeg", "Cache-Control": "max-age=86400",
                       "ETag": f'"{n:x}"'}
            if n % 10 == 0:  # some hosts' CDNs send an opt-out header on some images
                headers["X-Robots-Tag"] = "noai, noimageai"
        elif self.path == "/robots.txt":
            body, status = ROBOTS, 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(hosts: int) -> list[str]:
    """Start `hosts` servers on 127.0.0.x; their base URLs."""
    bases = []
    for h in range(hosts):
        srv = _Server((f"127.0.0.{h + 1}", 0), _Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        bases.append(f"http://127.0.0.{h + 1}:{srv.server_address[1]}")
    return bases


def sizes(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        out = {t: int(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t})
                      .scalar_one()) for t in TABLES}
        out["signal rows, url scope"] = int(conn.execute(text(
            "SELECT count(*) FROM signals WHERE scope = 'url'")).scalar_one())
        out["signal rows, host scope"] = int(conn.execute(text(
            "SELECT count(*) FROM signals WHERE scope = 'host'")).scalar_one())
        out["signal rows, image scope"] = int(conn.execute(text(
            "SELECT count(*) FROM signals WHERE scope = 'image'")).scalar_one())
    engine.dispose()
    return out


def signal_column_widths(url: str) -> dict[str, float]:
    """Average bytes per signals row of each column (pg_column_size, non-NULL values) and of
    the whole row."""
    engine = make_engine(url)
    with engine.connect() as conn:
        columns = [str(c) for c in conn.execute(text(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'signals' "
            "AND table_schema = current_schema() ORDER BY ordinal_position")).scalars()]
        widths = conn.execute(text("SELECT " + ", ".join(
            f'coalesce(avg(pg_column_size("{c}")), 0)' for c in columns)
            + ", coalesce(avg(pg_column_size(s.*)), 0) FROM signals s")).one()
    engine.dispose()
    return dict(zip([*columns, "whole row"], map(float, widths), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=int, default=5000)
    parser.add_argument("--hosts", type=int, default=20)
    args = parser.parse_args()
    bases = serve(args.hosts)
    with tempfile.TemporaryDirectory() as tmp, schema() as url:
        manifest = Path(tmp) / "urls.csv"
        with open(manifest, "w") as fh:
            fh.write("url,caption,license\n")
            for k in range(args.urls):
                fh.write(f"{bases[k % len(bases)]}/img/{k}.jpg,"
                         f"A photograph of item {k} on a wooden table in warm afternoon light,"
                         "CC-BY-4.0\n")
        settings = Settings(db_url=url, store_dir=Path(tmp) / "objects", allow_private=True,
                            user_agent="provenance-bench/1.0")
        run_ingest(settings, IngestOptions([manifest]))
        before = sizes(url)
        summary = run_fetch(settings, FetchOptions(concurrency=16, per_host=2))
        after = sizes(url)
        widths = signal_column_widths(url)
    fetched = summary.fetched
    print(f"{args.urls:,} URLs over {args.hosts} hosts; fetched {fetched:,}, "
          f"failed {summary.failed:,}; PostgreSQL pg_total_relation_size before/after the fetch")
    print(f"{'table':18s} {'before':>12s} {'after':>12s} {'added/URL':>10s} {'x 5.85e9':>10s}")
    total = 0.0
    for table in TABLES:
        added = (after[table] - before[table]) / fetched
        if table != "sightings":
            total += added
        print(f"{table:18s} {before[table]:12,d} {after[table]:12,d} {added:10.0f} "
              f"{added * LAION_ROWS / 1e12:8.2f} TB")
    for label in ("signal rows, url scope", "signal rows, host scope", "signal rows, image scope"):
        print(f"{label:26s}: {after[label]:,} ({after[label] / fetched:.2f} per URL)")
    widest = sorted(widths.items(), key=lambda kv: -kv[1])[:8]
    print("signals, average bytes per row by column (pg_column_size): " + ", ".join(
        f"{name} {width:.0f}" for name, width in widest))
    sighting = after["sightings"] / fetched
    print(f"per fetched URL: {total:.0f} bytes in the tables a fetch adds to (host-level rows "
          f"of {args.hosts} hosts included), plus {sighting:.0f} bytes of its sightings row "
          f"after the fetch; x 5.85e9 = {(total + sighting) * LAION_ROWS / 1e12:.1f} TB")


if __name__ == "__main__":
    main()
