"""Benchmark: `provenance fetch` vs a plain sequential `requests` loop over the same URLs.

Local servers stand in for the network (FIELD-NOTES: loopback is CPU-bound, so each
response is delayed to model latency): N hosts on 127.0.0.x, threaded HTTP/1.1 keep-alive
servers with TCP_NODELAY, each response delayed by --latency ms (two hosts 3x slower). The
servers run in a child process so the client's CPU time can be measured on its own.

Reports, in the same run:
  1. images/s of the fetch engine (full pipeline: signals, GET, analyze, store, catalog) and
     of the sequential loop (GET only) under the delay, and their ratio (target >= 5x);
  2. client CPU ms per image of each with no delay;
  3. the peak number of concurrent requests any host saw (from the servers' own log),
     asserted <= --per-host.

    python bench/fetch.py                 # 5,000 images, 20 hosts
    python bench/fetch.py --images 1000   # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import insert

from provenance.config import Settings
from provenance.db import migrate
from provenance.db.engine import make_engine
from provenance.db.models import Sighting
from provenance.ingest.keys import host_bucket
from provenance.samples import image_bytes
from provenance.services.fetch import FetchOptions, run_fetch

IMAGE_VARIANTS = 500  # distinct images served round-robin (distinct URLs, repeated bytes)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    latency = 0.0
    images: list[bytes]
    active = 0
    peak = 0
    lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients closing keep-alive connections at the end of a phase are not news

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *_args: Any) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.active += 1
            srv.peak = max(srv.peak, srv.active)
        try:
            if self.path.startswith("/img/"):
                time.sleep(srv.latency)
                n = int(self.path[5:].split(".")[0])
                body, status, ctype = srv.images[n % len(srv.images)], 200, "image/jpeg"
            else:
                body, status, ctype = b"not found", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with srv.lock:
                srv.active -= 1


def _serve(hosts: int, latency: float, pipe: Connection) -> None:
    images = [image_bytes(i, (256, 192)) for i in range(IMAGE_VARIANTS)]
    servers = []
    for h in range(hosts):
        srv = _Server((f"127.0.0.{h + 1}", 0), _Handler)
        srv.images = images
        srv.latency = latency * (3 if h >= hosts - 2 else 1)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    pipe.send([s.server_address[1] for s in servers])
    while True:
        command = pipe.recv()
        if command == "peaks":
            pipe.send([s.peak for s in servers])
            for s in servers:
                s.peak = 0
        elif command == "stop":
            return


def _urls(ports: list[int], count: int) -> list[str]:
    # Interleaved across hosts, as a shuffled URL list would be.
    return [f"http://127.0.0.{i % len(ports) + 1}:{ports[i % len(ports)]}/img/{i}.jpg"
            for i in range(count)]


def _catalog(root: Path, urls: list[str]) -> Settings:
    url = f"sqlite:///{root / 'catalog.db'}"
    engine = make_engine(url, create_dirs=True)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    rows = [
        {
            "sighting_key": f"{i:064x}", "status": "pending", "url": u,
            "host": u.split("/")[2].split(":")[0], "domain": u.split("/")[2].split(":")[0],
            "host_bucket": host_bucket(u.split("/")[2].split(":")[0]),
            "origin_kind": "manifest-row", "origin": f"bench.csv:{i}", "seen_at": now,
            "source_name": "bench",
        }
        for i, u in enumerate(urls)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Sighting), rows)
    engine.dispose()
    return Settings(db_url=url, store_dir=root / "objects", allow_private=True,
                    user_agent="provenance-bench/1.0")


def _engine_run(urls: list[str], per_host: int, concurrency: int) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = _catalog(Path(tmp), urls)
        wall, cpu = time.perf_counter(), time.process_time()
        summary = run_fetch(settings, FetchOptions(concurrency=concurrency, per_host=per_host))
        return time.perf_counter() - wall, time.process_time() - cpu, summary.fetched


def _requests_run(urls: list[str]) -> tuple[float, float, int]:
    session = requests.Session()
    session.headers["User-Agent"] = "requests-baseline"
    ok = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for url in urls:
        resp = session.get(url, timeout=10)
        ok += resp.status_code == 200 and len(resp.content) > 0
    return time.perf_counter() - wall, time.process_time() - cpu, ok


def _phase(args: argparse.Namespace, latency: float) -> tuple[list[int], Any, Any]:
    parent, child = mp.Pipe()
    proc = mp.Process(target=_serve, args=(args.hosts, latency, child), daemon=True)
    proc.start()
    ports: list[int] = parent.recv()
    urls = _urls(ports, args.images)
    engine = _engine_run(urls, args.per_host, args.concurrency)
    parent.send("peaks")
    peaks: list[int] = parent.recv()
    sample = urls[: args.baseline] if args.baseline else urls
    baseline = _requests_run(sample)
    parent.send("stop")
    proc.join(5)
    return peaks, engine, (baseline, len(sample))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--latency", type=float, default=50.0, help="ms per response")
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--baseline", type=int, default=1000,
                        help="URLs in the sequential loop (0: all); its rate is per image")
    args = parser.parse_args()

    peaks, (e_wall, _e_cpu, fetched), ((b_wall, _b_cpu, b_ok), n_base) = _phase(
        args, args.latency / 1000)
    assert fetched == args.images, f"engine fetched {fetched} of {args.images}"
    assert b_ok == n_base, f"baseline fetched {b_ok} of {n_base}"
    assert max(peaks) <= args.per_host, f"a host saw {max(peaks)} concurrent requests"
    e_rate, b_rate = fetched / e_wall, n_base / b_wall
    print(f"with {args.latency:.0f} ms latency ({args.hosts} hosts, 2 of them 3x slower), "
          f"{args.images} images:")
    print(f"  provenance fetch: {e_wall:7.2f} s  {e_rate:8.1f} images/s  (full pipeline)")
    print(f"  requests loop:    {b_wall:7.2f} s  {b_rate:8.1f} images/s  "
          f"(sequential GET only, {n_base} URLs)")
    print(f"  speed-up: {e_rate / b_rate:.1f}x")
    print(f"  peak concurrent requests per host (server log): {max(peaks)} "
          f"(limit {args.per_host}); per host: {peaks}")

    _peaks0, (_w, e_cpu, fetched0), ((_bw, b_cpu, b_ok0), n0) = _phase(args, 0.0)
    print("no latency, client CPU per image:")
    print(f"  provenance fetch: {1000 * e_cpu / fetched0:6.2f} ms  "
          "(signals, GET, sha256+pHash+embedded, store, catalog)")
    print(f"  requests loop:    {1000 * b_cpu / max(b_ok0, 1):6.2f} ms  (GET only, {n0} URLs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
