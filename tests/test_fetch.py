"""`provenance fetch` against real local HTTP servers, on SQLite and PostgreSQL.

What the servers actually received is asserted from their logs: a URL that robots.txt,
a blocklist or an opt-out reserves must never be requested.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Request, Response

from provenance.config import Settings
from provenance.db.engine import make_engine
from provenance.db.models import (
    Blocklist,
    BlocklistEntry,
    FetchAttempt,
    OptOutRequest,
    Sighting,
    SignalObservation,
)
from provenance.db.models import Image as ImageRow
from provenance.samples import image_bytes
from provenance.services.fetch_scheduler import DocsTask, HostScheduler, UrlTask
from provenance.services.fetch_work import Job, retry_after_seconds
from provenance.services.host_signals import HostDocs
from provenance.signals.robots import RobotsDoc
from provenance.signals.tdmrep import TdmRepDoc
from provenance.store import ContentStore
from tests.conftest import Cli

UA = "provenance-test/1.0 (+https://example.org/bot)"
ROBOTS = """\
User-agent: GPTBot
Disallow: /gpt-private/

User-agent: provenance-test
Disallow: /mine/

User-agent: *
Allow: /
"""


def _server() -> HTTPServer:
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    srv.start()
    return srv


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[HTTPServer, HTTPServer]]:
    site, down = _server(), _server()
    yield site, down
    site.stop()
    down.stop()


@pytest.fixture
def site(servers: tuple[HTTPServer, HTTPServer]) -> Iterator[HTTPServer]:
    for srv in servers:
        srv.clear()
    yield servers[0]
    for srv in servers:
        srv.clear()


@pytest.fixture
def down(servers: tuple[HTTPServer, HTTPServer], site: HTTPServer) -> HTTPServer:
    return servers[1]


def requested(srv: HTTPServer) -> list[str]:
    return [req.path for req, _resp in srv.log]


def write_manifest(path: Path, urls: list[str]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "license"])
        for url in urls:
            writer.writerow([url, "CC-BY-4.0"])
    return path


def ingest(cli: Cli, tmp_path: Path, urls: list[str]) -> None:
    manifest = write_manifest(tmp_path / "manifest.csv", urls)
    out = json.loads(cli("ingest", str(manifest), "--workers", "1", "--json").stdout)
    assert out["pending_fetch"] == len(urls)


def fetch(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("fetch", "--allow-private", "--user-agent", UA, "--json", *args)
    return json.loads(result.stdout)


def rows(settings: Settings, stmt: Any) -> list[Any]:
    engine = make_engine(settings.db_url)
    with engine.connect() as conn:
        found = list(conn.execute(stmt).all())
    engine.dispose()
    return found


def by_url(settings: Settings) -> dict[str, tuple[str, str | None, str | None]]:
    return {
        url: (status, error, sha)
        for url, status, error, sha in rows(
            settings,
            select(Sighting.url, Sighting.status, Sighting.error, Sighting.image_sha256),
        )
    }


def no_host_documents(site: HTTPServer) -> None:
    """robots.txt, ai.txt and tdmrep.json all 404: nothing reserved (a 5xx would be unknown)."""
    for path in ("/robots.txt", "/ai.txt", "/.well-known/tdmrep.json"):
        site.expect_request(path).respond_with_data("", status=404)


def serve_site(site: HTTPServer) -> dict[str, bytes]:
    """The main test site: images, reserved paths, headers, errors, a hanging URL."""
    images = {f"/img/{i}.jpg": image_bytes(i) for i in range(3)}
    site.expect_request("/robots.txt").respond_with_data(ROBOTS, content_type="text/plain")
    site.expect_request("/ai.txt").respond_with_data("", status=404)
    site.expect_request("/.well-known/tdmrep.json").respond_with_data("", status=404)
    for path, data in images.items():
        site.expect_request(path).respond_with_data(data, content_type="image/jpeg")
    site.expect_request("/img/copy.jpg").respond_with_data(images["/img/0.jpg"],
                                                           content_type="image/jpeg")
    for path in ("/gpt-private/a.jpg", "/mine/b.jpg"):
        site.expect_request(path).respond_with_data(image_bytes(50), content_type="image/jpeg")
    site.expect_request("/img/noai.jpg").respond_with_response(
        Response(image_bytes(60), content_type="image/jpeg", headers={"X-Robots-Tag": "noai"})
    )
    site.expect_request("/img/missing.jpg").respond_with_data("no", status=404)
    site.expect_request("/img/error.jpg").respond_with_data("boom", status=500)
    site.expect_request("/img/big.jpg").respond_with_data(b"\xff" * 300_000,
                                                          content_type="image/jpeg")
    site.expect_request("/img/fake.jpg").respond_with_data(b"<html>hi</html>",
                                                           content_type="image/jpeg")
    site.expect_request("/img/page.html").respond_with_data(b"<html></html>",
                                                            content_type="text/html")
    # 503 once, then the image: a transient failure retried within the run.
    site.expect_oneshot_request("/img/flaky.jpg").respond_with_response(
        Response("busy", status=503, headers={"Retry-After": "0"})
    )
    site.expect_request("/img/flaky.jpg").respond_with_data(image_bytes(70),
                                                            content_type="image/jpeg")
    return images


def test_fetch_honours_signals_and_records_every_outcome(
    cli: Cli, settings: Settings, tmp_path: Path, site: HTTPServer, down: HTTPServer
) -> None:
    images = serve_site(site)
    down.expect_request("/robots.txt").respond_with_data("down", status=500)
    down.expect_request("/x.jpg").respond_with_data(image_bytes(80), content_type="image/jpeg")
    paths = [*images, "/img/copy.jpg", "/gpt-private/a.jpg", "/mine/b.jpg", "/img/noai.jpg",
             "/img/missing.jpg", "/img/error.jpg", "/img/big.jpg", "/img/fake.jpg",
             "/img/page.html", "/img/flaky.jpg"]
    urls = [site.url_for(p) for p in paths] + [down.url_for("/x.jpg")]
    ingest(cli, tmp_path, urls)

    out = fetch(cli, "--max-bytes", "200000", "--timeout", "2")

    assert out["fetched"] == 5  # 0, 1, 2, copy (same bytes as 0), flaky
    assert out["skipped_reserved"] == 3  # robots for gptbot, robots for us, X-Robots-Tag
    assert out["skipped_unknown"] == 1  # robots.txt answered 500: treated as disallowed
    assert out["failed"] == 5 and out["pending"] == 0 and out["retries"] == 1
    seen = requested(site)
    assert "/gpt-private/a.jpg" not in seen and "/mine/b.jpg" not in seen
    assert seen.count("/robots.txt") == 1 and seen.count("/img/flaky.jpg") == 2
    assert "/x.jpg" not in requested(down)  # only its host documents were requested

    state = by_url(settings)
    store = ContentStore(settings.store_dir)
    for path, data in images.items():
        status, _error, sha = state[site.url_for(path)]
        assert status == "ok" and sha == hashlib.sha256(data).hexdigest()
        assert store.read(sha) == data
    assert state[site.url_for("/img/copy.jpg")][2] == state[site.url_for("/img/0.jpg")][2]
    assert state[site.url_for("/gpt-private/a.jpg")][:2] == (
        "skipped", "reserved by robots.txt: disallowed for gptbot")
    assert state[site.url_for("/mine/b.jpg")][1] == "reserved by robots.txt: disallowed for " \
        "provenance-test"
    noai = state[site.url_for("/img/noai.jpg")]
    assert noai[0] == "skipped" and noai[2] is None
    assert noai[1] is not None and noai[1].startswith("reserved by X-Robots-Tag")
    assert not store.has(hashlib.sha256(image_bytes(60)).hexdigest())
    assert state[down.url_for("/x.jpg")][0] == "skipped"
    assert "robots.txt unreachable" in (state[down.url_for("/x.jpg")][1] or "")
    failures = {p: state[site.url_for(p)][1] for p in (
        "/img/missing.jpg", "/img/error.jpg", "/img/big.jpg", "/img/fake.jpg", "/img/page.html")}
    assert failures["/img/missing.jpg"] == "HTTP 404"
    assert failures["/img/error.jpg"] == "HTTP 500"
    assert failures["/img/big.jpg"] == "body larger than 200000 bytes"
    assert failures["/img/fake.jpg"] == "not an image"
    assert failures["/img/page.html"] == "not an image (Content-Type text/html)"

    n_images = rows(settings, select(func.count()).select_from(ImageRow))[0][0]
    assert n_images == 4
    attempts = rows(settings, select(FetchAttempt.url, FetchAttempt.outcome,
                                     FetchAttempt.status_code, FetchAttempt.user_agent))
    outcomes = sorted(o for _u, o, _s, _a in attempts)
    assert outcomes.count("retry") == 1 and outcomes.count("fetched") == 5
    assert all(a == UA for _u, o, _s, a in attempts if o == "fetched")
    xrt = rows(settings, select(SignalObservation.status).where(
        SignalObservation.scope == "url",
        SignalObservation.subject == site.url_for("/img/noai.jpg"),
        SignalObservation.kind == "x-robots-tag"))
    assert xrt == [("reserved",)]
    robots_reserved = rows(settings, select(SignalObservation.status).where(
        SignalObservation.subject == site.url_for("/gpt-private/a.jpg"),
        SignalObservation.kind == "robots"))
    assert robots_reserved == [("reserved",)]


def test_rerun_is_idempotent_and_limit_partitions(
    cli: Cli, settings: Settings, tmp_path: Path, site: HTTPServer
) -> None:
    no_host_documents(site)
    for i in range(6):
        site.expect_request(f"/p/{i}.jpg").respond_with_data(image_bytes(100 + i),
                                                             content_type="image/jpeg")
    urls = [site.url_for(f"/p/{i}.jpg") for i in range(6)]
    ingest(cli, tmp_path, urls)

    first = fetch(cli, "--limit", "2")
    assert first["fetched"] == 2 and first["pending"] == 4
    # One host: exactly one of two partitions owns it.
    halves = [fetch(cli, "--partition", f"{i}/2") for i in range(2)]
    assert sorted(h["fetched"] for h in halves) == [0, 4]
    again = fetch(cli)
    assert again["fetched"] == 0 and again["pending"] == 0
    image_requests = [p for p in requested(site) if p.startswith("/p/")]
    assert sorted(image_requests) == sorted(f"/p/{i}.jpg" for i in range(6))
    assert rows(settings, select(func.count()).select_from(ImageRow))[0][0] == 6


def test_blocklists_and_optouts_are_never_contacted(
    cli: Cli, settings: Settings, tmp_path: Path, site: HTTPServer
) -> None:
    no_host_documents(site)
    site.expect_request("/ok.jpg").respond_with_data(image_bytes(5), content_type="image/jpeg")
    urls = [site.url_for("/ok.jpg"), site.url_for("/listed/a.jpg"), site.url_for("/gone.jpg"),
            "http://cdn.blocked.example/a.jpg"]
    ingest(cli, tmp_path, urls)
    now = datetime.now(UTC)
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        list_id = conn.execute(Blocklist.__table__.insert().values(
            name="badsites", version="2026-11", imported_at=now, entries=2)).inserted_primary_key
        assert list_id is not None
        conn.execute(BlocklistEntry.__table__.insert(), [
            {"list_id": list_id[0], "kind": "domain", "value": "blocked.example"},
            {"list_id": list_id[0], "kind": "url-prefix", "value": site.url_for("/listed/")},
        ])
        conn.execute(OptOutRequest.__table__.insert().values(
            requester="artist", received_at=now, recorded_at=now, scope_kind="url",
            scope_value=f"127.0.0.1:{site.port}/gone.jpg", status="active"))
    engine.dispose()

    out = fetch(cli)

    assert out["fetched"] == 1
    assert out["skipped_blocklisted"] == 2 and out["skipped_optout"] == 1
    assert requested(site) == ["/robots.txt", "/ai.txt", "/.well-known/tdmrep.json", "/ok.jpg"]
    state = by_url(settings)
    assert state["http://cdn.blocked.example/a.jpg"][1] == (
        "blocklisted by badsites 2026-11 (domain blocked.example)")
    assert state[site.url_for("/gone.jpg")][1] == (
        f"opted out by request 1 (url 127.0.0.1:{site.port}/gone.jpg)")


def test_hanging_url_times_out_and_fails_after_retries(
    cli: Cli, settings: Settings, tmp_path: Path, site: HTTPServer
) -> None:
    release = threading.Event()

    def hang(_req: Request) -> Response:
        release.wait(10)
        return Response(b"late")

    no_host_documents(site)
    site.expect_request("/hang.jpg").respond_with_handler(hang)
    ingest(cli, tmp_path, [site.url_for("/hang.jpg")])
    try:
        out = fetch(cli, "--timeout", "0.2")
    finally:
        release.set()
        # The server answers the three abandoned requests once released: wait for them here,
        # or they land in the next test's request log.
        deadline = time.monotonic() + 15
        while requested(site).count("/hang.jpg") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert out["failed"] == 1 and out["retries"] == 2
    assert by_url(settings)[site.url_for("/hang.jpg")][1] == "timeout (after 3 attempts)"


def test_loopback_refused_without_allow_private(
    cli: Cli, settings: Settings, tmp_path: Path, site: HTTPServer
) -> None:
    no_host_documents(site)
    ingest(cli, tmp_path, [site.url_for("/a.jpg")])
    out = json.loads(cli("fetch", "--json").stdout)
    assert out["skipped_unknown"] == 1 and out["fetched"] == 0
    assert site.log == []
    error = by_url(settings)[site.url_for("/a.jpg")][1] or ""
    assert "unsafe address 127.0.0.1 for 127.0.0.1" in error


def test_killed_run_resumes_without_loss_or_duplicates(
    cli: Cli, settings: Settings, tmp_path: Path, site: HTTPServer
) -> None:
    count = 24

    def slow(req: Request) -> Response:
        time.sleep(0.1)
        seed = int(req.path.rsplit("/", 1)[1].split(".")[0])
        return Response(image_bytes(200 + seed), content_type="image/jpeg")

    no_host_documents(site)
    for i in range(count):
        site.expect_request(f"/s/{i}.jpg").respond_with_handler(slow)
    ingest(cli, tmp_path, [site.url_for(f"/s/{i}.jpg") for i in range(count)])
    argv = [sys.executable, "-m", "provenance", "--db", settings.db_url, "--store",
            str(settings.store_dir), "fetch", "--allow-private", "--concurrency", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PROVENANCE_USER_AGENT": UA})
    ok = select(func.count()).select_from(Sighting).where(Sighting.status == "ok")
    deadline = time.monotonic() + 60
    while rows(settings, ok)[0][0] < 4 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = rows(settings, ok)[0][0]
    assert 4 <= done_before < count

    out = fetch(cli)

    assert out["fetched"] == count - done_before and out["pending"] == 0
    assert rows(settings, ok)[0][0] == count
    fetched = rows(settings, select(FetchAttempt.sighting_id).where(
        FetchAttempt.outcome == "fetched"))
    assert len(fetched) == count == len(set(fetched))
    assert rows(settings, select(func.count()).select_from(ImageRow))[0][0] == count
    store = ContentStore(settings.store_dir)
    for (sha,) in rows(settings, select(Sighting.image_sha256)):
        assert sha is not None and store.has(sha)


def _docs(origin: str) -> HostDocs:
    allow = RobotsDoc("allow-all", "", 404, None, origin + "/robots.txt")
    return HostDocs(origin, allow, allow, TdmRepDoc.__new__(TdmRepDoc))


def test_scheduler_bounds_hosts_and_spaces_requests() -> None:
    sched = HostScheduler(per_host=2, delay=1.0)
    for i in range(3):
        sched.add(Job(i, f"http://a.test/{i}", "http://a.test"), 0.0)
    sched.add(Job(9, "http://b.test/9", "http://b.test"), 0.0)
    first = [sched.take(0.0), sched.take(0.0), sched.take(0.0)]
    assert first == [DocsTask("http://a.test"), DocsTask("http://b.test"), None]
    sched.docs_loaded("http://a.test", _docs("http://a.test"), None, 0.0)
    task = sched.take(0.0)
    assert isinstance(task, UrlTask) and task.job.sighting_id == 0
    assert sched.take(0.5) is None  # a.test: the 1 s gap between starts is not over
    assert sched.wait_hint(0.5) == pytest.approx(0.5)
    later = sched.take(1.0)
    assert isinstance(later, UrlTask) and later.job.sighting_id == 1
    assert sched.take(5.0) is None  # two in flight on a.test: its limit
    sched.finished("http://a.test", 5.0)
    retry = sched.take(5.0)
    assert isinstance(retry, UrlTask) and retry.job.sighting_id == 2
    sched.retry(retry.job, 10.0, 5.0)
    assert sched.take(6.0) is None and sched.wait_hint(6.0) == pytest.approx(9.0)
    again = sched.take(15.0)
    assert isinstance(again, UrlTask) and again.job.attempt == 2


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Wed, 25 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
